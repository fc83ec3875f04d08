"""segsearch: training-free search of FasterSeg real-time segmenters, driven by a proxylang proxy."""

__version__ = "0.1.0"
