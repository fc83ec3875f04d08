"""segsearch: training-free search of FasterSeg real-time segmenters, driven by a proxylang proxy.

Stages, one module each: ``space`` (operators, alpha/beta/ratio matrices, legality, arch.json),
``network`` (matrices to a teacher or student network), ``latency`` (measured FPS and the per-part
lookup table), ``search`` (SasWOT's evolutionary search scored at initialisation), ``data``
(Cityscapes/CamVid), ``metrics`` (mIoU), ``train`` (retraining with optional distillation) and
``cli``. Typical use::

    segsearch search --proxy examples/saswot.px --out arch.json [--target-fps 150]
    segsearch latency arch.json --size 1024x2048 [--fp16]
    segsearch train arch.json --dataset cityscapes --data-root DIR --role teacher --out runs/teacher
    segsearch train arch.json --dataset cityscapes --data-root DIR --teacher runs/teacher/best.pt
    segsearch eval runs/train/best.pt --dataset cityscapes --data-root DIR
"""

__version__ = "0.1.0"
