"""The registry of primitives: the one place that says everything about each of them.

An entry holds a primitive's arity, formula, shape rule, kernel, LaTeX, infix spelling and precedence,
algebraic properties (read by ``canonical``) and whether the genetic operators offer it as a reducer. The
parser, checker, printer, canonicaliser, genetic operators and both evaluators read the entry and keep
no table of their own, so adding or changing a primitive is an edit here only (docs/language.md,
"Adding a primitive").

The *kind* says how the evaluators apply the kernel; the eager oracle and the fused compiler run the same
kernel, so the two cannot drift apart:

- ``elementwise``: ``kernel`` maps tensors elementwise (a scalar broadcasts against a matrix); it runs on
  one site's matrix or on every site of every network packed flat alike;
- ``segment``: ``kernel(segments, *matrices)`` works on each matrix as a whole (sums, means, rows), asking
  ``segments`` (a ``Segments``) for per-matrix sums and rows: ``OneMatrix`` in the eager oracle, every
  site of every network at once in the fused compiler (``pack.PackedSegments``). Row-wise softmax runs
  along the last dim of the matrix view, i.e. over the inputs of one output channel for ``W``/``G`` and
  over the features of one sample for ``A``/``R`` (the authors' dim 0 would normalise across the *batch*
  for activations, mixing samples);
- ``matrix``: ``kernel`` maps stacks ``[B, m, n]`` (so the compiler can group equal shapes);
- ``layersum`` and ``norm_avt``: change the level (site -> network); the evaluators implement them.

``invert``, ``log``, ``abslog``, ``div``, ``normalize`` and ``cosine`` are *guarded*: where they are undefined
because of a zero (1/0, ln 0, x/0, a constant matrix's z-score, the cosine of a zero matrix) they give 0,
so a layer whose gradient is exactly zero (a dead 'none' edge) contributes nothing instead of making the
whole network invalid. ``log`` of a negative number stays NaN (take ``abs`` first). ``hamming`` counts,
and ``layersum`` sums over sites, in float64 (see docs/language.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sympy
import torch
from torch import Tensor

from proxylang.lang.types import NET, NET_DIMENSIONS, SCALAR, RuleError, Type, joint_level, require_matrix

Shape = tuple[sympy.Expr, ...]

Rule = Callable[[list[Type]], Type]


@dataclass(frozen=True)
class Primitive:
    """One operation of the language: every fact about it, read by every stage."""

    name: str
    arity: int
    kind: str
    formula: str
    shape: str
    latex: str  # a format string over {0}, {1}
    rule: Rule
    kernel: Callable[..., Tensor] | None = None  # its signature depends on ``kind`` (module docstring)
    literal_exponent: bool = False
    keeps_finite: bool = False  # finite arguments always give a finite result (no check needed)
    # infix spelling: the symbol of ``grammar/proxy.lark`` and its binding strength (higher binds tighter)
    infix: str | None = None
    precedence: int | None = None
    # LaTeX grouping: a ``latex_infix`` template (``{0} + {1}``) needs parentheses as an operand of a
    # ``latex_tight`` one (which sets its operands bare: products, powers), unless both are the same
    # associative operator
    latex_infix: bool = False
    latex_tight: bool = False
    # algebra, for the canonical keys
    idempotent: bool = False  # f(f(x)) = f(x)
    symmetric: bool = False  # f(x, y) = f(y, x)
    associative: bool = False  # f(f(x, y), z) = f(x, f(y, z))
    alias_of: str | None = None  # the same function under another name
    reducer: bool = False  # offered by the genetic operators to close a matrix into a proxy
    # blocks (``tiles.Tiled``): how the primitive acts on a block of rows (``row_blocks``) or of columns
    # (``column_blocks``) of its matrix arguments. "map": the block gives the same block of its result
    # (elementwise primitives always do); "sum", "mean" (weighted by the blocks' sizes) or "norm" (root
    # of the sum of squares): its values on the blocks combine into its value on the whole matrices;
    # None: it needs whole matrices
    row_blocks: str | None = None
    column_blocks: str | None = None
    # work (``cost.proxy_cost``): the dimensions whose product counts a ``matrix`` primitive's
    # multiply-adds at a site, from its arguments' shapes and its result's; None: the elements it reads
    # and writes (every other primitive streams through its operands)
    work: Callable[[tuple[Shape, ...], Shape], Shape] | None = None


class Segments(Protocol):
    """The matrices a ``segment`` kernel works on, one per segment, with their elements in one tensor:
    one site's matrix (``OneMatrix``, the eager oracle) or every site of every network packed flat (the
    fused compiler). A kernel written against it is the one formula both evaluators run."""

    @property
    def numel(self) -> Tensor:
        """Number of elements of each matrix, in the data's dtype."""

    @property
    def rows(self) -> Tensor:
        """Number of rows of each matrix, in the data's dtype."""

    def sum(self, data: Tensor) -> Tensor:
        """The sum of each matrix."""

    def spread(self, values: Tensor) -> Tensor:
        """One value per matrix, repeated over its elements."""

    def first(self, data: Tensor) -> Tensor:
        """The first element of each matrix."""

    def rowwise(self, fn: Callable[..., Tensor], data: Tensor) -> Tensor:
        """``fn(matrix, dim=-1)`` on each matrix."""


class OneMatrix:
    """``Segments`` of a single matrix: plain torch reductions, as the eager oracle runs them."""

    def __init__(self, x: Tensor) -> None:
        self.x = x

    @property
    def numel(self) -> Tensor:
        return torch.tensor(self.x.numel(), dtype=self.x.dtype, device=self.x.device)

    @property
    def rows(self) -> Tensor:
        return torch.tensor(self.x.shape[0], dtype=self.x.dtype, device=self.x.device)

    def sum(self, data: Tensor) -> Tensor:
        return data.sum()

    def spread(self, values: Tensor) -> Tensor:
        return values  # a 0-d tensor broadcasts

    def first(self, data: Tensor) -> Tensor:
        return data.reshape(-1)[0]

    def rowwise(self, fn: Callable[..., Tensor], data: Tensor) -> Tensor:
        return fn(data, dim=-1)


# ---- shape rules -------------------------------------------------------------------------------

def same_as_argument(types: list[Type]) -> Type:
    return types[0]


def matrix_to_same(types: list[Type]) -> Type:
    require_matrix(types[0])
    return types[0]


def matrix_to_scalar(types: list[Type]) -> Type:
    require_matrix(types[0])
    return Type(types[0].level, SCALAR)


def square_to_scalar(types: list[Type]) -> Type:
    rows, cols = require_matrix(types[0])
    if rows != cols:
        raise RuleError(f"needs a square matrix, got {rows}×{cols}")
    return Type(types[0].level, SCALAR)


def gram_rule(types: list[Type]) -> Type:
    rows, _ = require_matrix(types[0])
    return Type(types[0].level, (rows, rows))


def broadcast_rule(types: list[Type]) -> Type:
    a, b = types
    level = joint_level(a, b)
    if a.is_matrix and b.is_matrix and a.shape != b.shape:
        raise RuleError(f"shapes {a.shape[0]}×{a.shape[1]} and {b.shape[0]}×{b.shape[1]} differ")
    return Type(level, a.shape if a.is_matrix else b.shape)


def matmul_rule(types: list[Type]) -> Type:
    level = joint_level(*types)
    m, k1 = require_matrix(types[0], "left operand")
    k2, n = require_matrix(types[1], "right operand")
    if k1 != k2:
        raise RuleError(f"inner dimensions {k1} and {k2} differ ({m}×{k1} times {k2}×{n})")
    return Type(level, (m, n))


def row_distance_rule(types: list[Type]) -> Type:
    level = joint_level(*types)
    m, d1 = require_matrix(types[0], "left operand")
    n, d2 = require_matrix(types[1], "right operand")
    if d1 != d2:
        raise RuleError(f"rows have different lengths {d1} and {d2}")
    return Type(level, (m, n))


def equal_matrices_to_scalar(types: list[Type]) -> Type:
    level = joint_level(*types)
    a, b = require_matrix(types[0], "left operand"), require_matrix(types[1], "right operand")
    if a != b:
        raise RuleError(f"shapes {a[0]}×{a[1]} and {b[0]}×{b[1]} differ")
    return Type(level, SCALAR)


def layersum_rule(types: list[Type]) -> Type:
    (t,) = types
    if t.level in (None, NET):
        raise RuleError(f"sums over sites, but its argument is a {t}")
    site_dims = set().union(*(d.free_symbols for d in t.shape)) - NET_DIMENSIONS
    if site_dims:
        names = ", ".join(sorted(map(str, site_dims)))
        raise RuleError(f"its argument's shape {t.shape[0]}×{t.shape[1]} varies by site ({names})")
    return Type(NET, t.shape)


def norm_avt_rule(types: list[Type]) -> Type:
    (t,) = types
    if t.is_matrix or t.level is None:
        raise RuleError(f"normalises a whole proxy (a scalar), got a {t}")
    return Type(NET, SCALAR)


# ---- elementwise and matrix kernels that need more than one torch call ------------------------------

def _zeros(x: Tensor) -> Tensor:
    """1.0 where ``x`` is 0, else 0.0, in x's dtype. The guarded kernels below add and subtract it instead
    of branching with ``torch.where`` on a bool mask: bool tensors are slow on the CPU (``where`` takes
    3 ms and ``x == 0`` 0.7 ms on 512K float32, a float comparison 0.12 ms; 2-core CPU)."""
    return torch.eq(x, 0, out=torch.empty_like(x))


def guarded_div(x: Tensor, y: Tensor) -> Tensor:
    """x / y, and 0 where y = 0 (for a finite x; a non-finite x has already invalidated the network): the
    kernel of ``div`` and the last step of ``normalize`` and ``cosine``."""
    zero = _zeros(y)
    quotient = x / (y + zero)
    return quotient - quotient * zero


def _invert(x: Tensor) -> Tensor:
    zero = _zeros(x)
    return torch.reciprocal(x + zero) - zero  # 1/1 - 1 = 0 where x = 0, 1/x - 0 elsewhere


def _log(x: Tensor) -> Tensor:
    """ln x, and 0 at x = 0 as the log of 1 there (a negative x stays NaN: abs first). Never the log of
    an exact zero: the CPU's log is 10x slower on zeros (-inf) than on other numbers, and gradients
    through a ReLU are half zeros."""
    return torch.log(x + _zeros(x))


def _abslog(x: Tensor) -> Tensor:
    return _log(x.abs())


GRAM_CHUNK = 1024  # columns per batched product in a gram of few, long rows


def _inner_products(args: tuple[Shape, ...], out: Shape) -> Shape:
    """Each entry of the result is an inner product along the rows of the first argument."""
    return (*out, args[0][1])


def _gram(x: Tensor) -> Tensor:
    """``X Xᵀ``. Few long rows (a batch's activations: 8 × 65536) make one matmul slow on the CPU (an
    8×8 output leaves the library little to split), so the columns are cut into chunks multiplied as a
    batch and summed: 2× faster at 8 × 65536 float32 (2-core CPU), and exact for 0/1 codes alike."""
    rows, columns = x.shape[-2], x.shape[-1]
    whole = columns - columns % GRAM_CHUNK
    if rows > 64 or whole < 2 * GRAM_CHUNK:
        return x @ x.transpose(-1, -2)
    chunks = x[..., :whole].unflatten(-1, (-1, GRAM_CHUNK)).transpose(-2, -3)  # (..., chunks, rows, chunk)
    out = (chunks @ chunks.transpose(-1, -2)).sum(-3)
    rest = x[..., whole:]
    return out + rest @ rest.transpose(-1, -2) if rest.shape[-1] else out


def promoted(*ts: Tensor) -> list[Tensor]:
    """The operands in their common dtype (``hamming`` and ``layersum`` give float64, inputs are float32)."""
    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(dtype) for t in ts]


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    return torch.matmul(*promoted(a, b))


def _cdist(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(*promoted(a, b))


COUNT_CHUNK = 1 << 20  # columns per matmul of 0/1 codes: float32 is exact up to 2**24


def _hamming(a: Tensor, b: Tensor) -> Tensor:
    """Counts in float64: |a_i| + |b_j| - 2 a_i . b_j over the codes ``x > 0``. The row sums and dot
    products run in float32 on chunks of at most ``COUNT_CHUNK`` columns (exact: integers below 2**24)
    and add up in float64, so a count is exact up to 2**53 while the work keeps float32 speed (one matmul
    instead of the two of ``c_a (1 - c_b)ᵀ + (1 - c_a) c_bᵀ``)."""
    out = torch.zeros((*a.shape[:-1], b.shape[-2]), dtype=torch.float64, device=a.device)
    for start in range(0, a.shape[-1], COUNT_CHUNK):
        ca = (a[..., start:start + COUNT_CHUNK] > 0).to(torch.float32)
        cb = (b[..., start:start + COUNT_CHUNK] > 0).to(torch.float32)
        out += ca.sum(-1).to(torch.float64).unsqueeze(-1) + cb.sum(-1).to(torch.float64).unsqueeze(-2)
        out -= 2 * (ca @ cb.transpose(-1, -2)).to(torch.float64)
    return out


def _slogdet(x: Tensor) -> Tensor:
    return torch.linalg.slogdet(x).logabsdet


def _compare(op: Callable[..., Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """0/1 in the operands' float dtype, written by the comparison straight into a float tensor: 3x
    faster on the CPU than a bool result converted afterwards (measured on 512K-element blocks)."""
    def fn(a: Tensor, b: Tensor) -> Tensor:
        dtype = a.dtype if a.is_floating_point() else b.dtype
        if a.shape == b.shape or b.dim() == 0:  # the common cases, without broadcast_shapes' overhead
            shape = a.shape
        else:
            shape = b.shape if a.dim() == 0 else torch.broadcast_shapes(a.shape, b.shape)
        return op(a, b, out=torch.empty(shape, dtype=dtype, device=a.device))

    return fn


def _pow(x: Tensor, p: Tensor) -> Tensor:
    return torch.pow(x, p)


def _identity(x: Tensor) -> Tensor:
    return x


# ---- segment kernels: one formula for the eager oracle and the fused compiler ----------------------

def _mean(seg: Segments, data: Tensor) -> Tensor:
    return seg.sum(data) / seg.numel


def _sum(seg: Segments, x: Tensor) -> Tensor:
    return seg.sum(x)


def _frobenius(seg: Segments, x: Tensor) -> Tensor:
    return seg.sum(x.square()).sqrt()


def _l1norm(seg: Segments, x: Tensor) -> Tensor:
    return _mean(seg, x.abs())


def _softmax(seg: Segments, x: Tensor) -> Tensor:
    return seg.rowwise(torch.softmax, x)


def _logsoftmax(seg: Segments, x: Tensor) -> Tensor:
    return seg.rowwise(torch.log_softmax, x)


def _normalize(seg: Segments, x: Tensor) -> Tensor:
    # shifted by its first element, a constant matrix is exactly zero whatever its value (its mean then
    # rounds to nothing), so its std is exactly 0 and the result all zeros
    shifted = x - seg.spread(seg.first(x))
    centred = shifted - seg.spread(_mean(seg, shifted))
    return guarded_div(centred, seg.spread(_mean(seg, centred.square()).sqrt()))


def _cosine(seg: Segments, a: Tensor, b: Tensor) -> Tensor:
    return guarded_div(seg.sum(a * b), seg.sum(a.square()).sqrt() * seg.sum(b.square()).sqrt())


def _kl(seg: Segments, a: Tensor, b: Tensor) -> Tensor:
    lp, lq = _logsoftmax(seg, a), _logsoftmax(seg, b)
    return seg.sum(lp.exp() * (lp - lq)) / seg.rows


def _l1loss(seg: Segments, a: Tensor, b: Tensor) -> Tensor:
    return _mean(seg, (a - b).abs())


def _mse(seg: Segments, a: Tensor, b: Tensor) -> Tensor:
    return _mean(seg, (a - b).square())


# ---- the registry --------------------------------------------------------------------------------

def _elementwise(name: str, arity: int, kernel: Callable[..., Tensor], formula: str, latex: str,
                 **extra: object) -> Primitive:
    shape = "x, y equal shapes or either scalar → that shape"
    if arity == 1 or extra.get("literal_exponent"):
        shape = "any → same" if arity == 1 else "x any, p a literal → shape of x"
    return Primitive(name, arity, "elementwise", formula, shape, latex,
                     same_as_argument if arity == 1 else broadcast_rule, kernel=kernel, **extra)


def _segment(name: str, arity: int, kernel: Callable[..., Tensor], formula: str, shape: str, latex: str,
             rule: Rule, **extra: object) -> Primitive:
    return Primitive(name, arity, "segment", formula, shape, latex, rule, kernel=kernel, **extra)


def _reduce(name: str, kernel: Callable[..., Tensor], formula: str, latex: str, **extra: object) -> Primitive:
    return _segment(name, 1, kernel, formula, "m×n → scalar", latex, matrix_to_scalar, **extra)


def _distance(name: str, kernel: Callable[..., Tensor], formula: str, latex: str,
              **extra: object) -> Primitive:
    return _segment(name, 2, kernel, formula, "m×n, m×n → scalar", latex, equal_matrices_to_scalar, **extra)


PRIMITIVES: dict[str, Primitive] = {p.name: p for p in [
    # unary, elementwise
    _elementwise("pow", 2, _pow, "x^p elementwise; p is a numeric literal (default 2)", r"{0}^{{{1}}}",
                 literal_exponent=True, latex_tight=True),
    _elementwise("exp", 1, torch.exp, "e^x", r"e^{{{0}}}"),
    _elementwise("log", 1, _log, "ln x; 0 where x = 0 (invalid where x < 0: abs first)",
                 r"\ln\left({0}\right)"),
    _elementwise("abslog", 1, _abslog, "ln |x|; 0 where x = 0", r"\ln\left|{0}\right|", keeps_finite=True),
    _elementwise("abs", 1, torch.abs, "|x|", r"\left|{0}\right|", keeps_finite=True, idempotent=True),
    _elementwise("relu", 1, torch.relu, "max(x, 0)", r"\operatorname{{relu}}\left({0}\right)",
                 keeps_finite=True, idempotent=True),
    _elementwise("sign", 1, torch.sign, "−1, 0 or 1 by the sign of x (not softsign)",
                 r"\operatorname{{sgn}}\left({0}\right)", keeps_finite=True, idempotent=True),
    _elementwise("invert", 1, _invert, "1/x; 0 where x = 0", r"\frac{{1}}{{{0}}}"),
    _elementwise("sigmoid", 1, torch.sigmoid, "1/(1 + e^−x)", r"\sigma\left({0}\right)", keeps_finite=True),
    _elementwise("noop", 1, _identity, "x (the identity, for search spaces that need one)", r"{0}",
                 keeps_finite=True, idempotent=True),
    # unary, matrix to matrix
    _segment("softmax", 1, _softmax, "e^x_ij / Σ_j e^x_ij along each row", "m×n → m×n",
             r"\operatorname{{softmax}}\left({0}\right)", matrix_to_same, keeps_finite=True,
             row_blocks="map"),
    _segment("logsoftmax", 1, _logsoftmax, "x_ij − ln Σ_j e^x_ij along each row", "m×n → m×n",
             r"\log\operatorname{{softmax}}\left({0}\right)", matrix_to_same, keeps_finite=True,
             row_blocks="map"),
    _segment("normalize", 1, _normalize, "(x − mean x) / std x over the whole matrix (population std); "
             "all zeros where std x = 0 (a constant matrix)", "m×n → m×n",
             r"\operatorname{{z}}\left({0}\right)", matrix_to_same, idempotent=True),
    Primitive("gram", 1, "matrix", "X Xᵀ", "m×n → m×m", r"{0}{0}^{{\top}}", gram_rule, kernel=_gram,
              latex_tight=True, column_blocks="sum", work=_inner_products),
    # unary, matrix to scalar
    _reduce("sum", _sum, "Σ_ij x_ij", r"\sum\left({0}\right)", reducer=True, row_blocks="sum",
            column_blocks="sum"),
    _reduce("mean", _mean, "Σ_ij x_ij / (m n)", r"\overline{{{0}}}", reducer=True, row_blocks="mean",
            column_blocks="mean"),
    _reduce("normsum", _mean, "elementwise normalised sum Σ x / numel (alias of mean)", r"\overline{{{0}}}",
            alias_of="mean", row_blocks="mean", column_blocks="mean"),
    _reduce("frobenius", _frobenius, "√(Σ_ij x_ij²)", r"\left\|{0}\right\|_F", reducer=True,
            row_blocks="norm", column_blocks="norm"),
    _reduce("l1norm", _l1norm, "Σ_ij |x_ij| / (m n), as in the authors' code",
            r"\overline{{\left|{0}\right|}}", reducer=True, row_blocks="mean",
            column_blocks="mean"),
    Primitive("slogdet", 1, "matrix", "ln |det X| (invalid when singular)", "m×m → scalar",
              r"\ln\left|\det {0}\right|", square_to_scalar, kernel=_slogdet,
              work=lambda args, out: (args[0][0],) * 3),
    # binary, elementwise (lt/gt/eq give 0.0/1.0); comparisons bind loosest and do not chain
    _elementwise("add", 2, torch.add, "x + y", r"{0} + {1}", infix="+", precedence=2, latex_infix=True,
                 symmetric=True, associative=True),
    _elementwise("sub", 2, torch.sub, "x − y", r"{0} - {1}", infix="-", precedence=2, latex_infix=True,
                 latex_tight=True),
    _elementwise("mul", 2, torch.mul, "x ⊙ y (elementwise product)", r"{0} \odot {1}", infix="*",
                 precedence=3, latex_infix=True, latex_tight=True, symmetric=True, associative=True),
    _elementwise("div", 2, guarded_div, "x / y elementwise; 0 where y = 0", r"\frac{{{0}}}{{{1}}}",
                 infix="/", precedence=3),
    _elementwise("lt", 2, _compare(torch.lt), "1 where x < y else 0", r"\left[{0} < {1}\right]",
                 keeps_finite=True, infix="<", precedence=1),
    _elementwise("gt", 2, _compare(torch.gt), "1 where x > y else 0", r"\left[{0} > {1}\right]",
                 keeps_finite=True, infix=">", precedence=1),
    _elementwise("eq", 2, _compare(torch.eq), "1 where x = y else 0", r"\left[{0} = {1}\right]",
                 keeps_finite=True, infix="==", precedence=1, symmetric=True),
    # binary, matrix
    Primitive("matmul", 2, "matrix", "X Y", "m×k, k×n → m×n", r"{0}\,{1}", matmul_rule, kernel=_matmul,
              latex_tight=True, work=_inner_products),
    Primitive("pairwise", 2, "matrix", "Euclidean distance between row i of X and row j of Y",
              "m×d, n×d → m×n", r"\operatorname{{dist}}\left({0}, {1}\right)", row_distance_rule,
              kernel=_cdist, work=_inner_products),
    Primitive("hamming", 2, "matrix", "number of positions where rows i of X and j of Y differ in sign "
              "(codes x > 0), exact counts in float64", "m×d, n×d → m×n",
              r"\operatorname{{ham}}\left({0}, {1}\right)", row_distance_rule, kernel=_hamming,
              keeps_finite=True, work=_inner_products),
    # binary, two matrices to one scalar
    _distance("cosine", _cosine, "Σ x y / (‖x‖ ‖y‖) over all elements; 0 where either is all zeros",
              r"\cos\left({0}, {1}\right)", symmetric=True),
    _distance("kl", _kl, "mean over rows of KL(softmax x_i ‖ softmax y_i)",
              r"\operatorname{{KL}}\left({0} \,\|\, {1}\right)", row_blocks="mean"),
    _distance("l1loss", _l1loss, "Σ |x − y| / numel", r"\operatorname{{L1}}\left({0}, {1}\right)",
              symmetric=True, row_blocks="mean", column_blocks="mean"),
    _distance("mse", _mse, "Σ (x − y)² / numel", r"\operatorname{{MSE}}\left({0}, {1}\right)",
              symmetric=True, row_blocks="mean", column_blocks="mean"),
    # levels
    Primitive("layersum", 1, "layersum", "Σ over the sites of a network, in float64",
              "same shape, site → net (the shape must not depend on per-site dimensions)", r"\sum_{{l}} {0}",
              layersum_rule),
    Primitive("norm_avt", 1, "norm_avt", "(p − min p) / (max p − min p), min and max over a calibration "
              "pre-sample (AVT, SasWOT Eq. 3–4)", "whole proxy → net scalar",
              r"\operatorname{{AVT}}\left({0}\right)", norm_avt_rule),
]}

UNARY = tuple(name for name, p in PRIMITIVES.items() if p.arity == 1)
BINARY = tuple(name for name, p in PRIMITIVES.items() if p.arity == 2 and not p.literal_exponent)
REDUCERS = tuple(name for name, p in PRIMITIVES.items() if p.reducer)
DEFAULT_EXPONENT = 2.0


def primitive_table() -> str:
    """The Markdown table of every primitive (docs/language.md is generated from it)."""
    rows = ["| name | arity | formula | shape rule |", "| --- | --- | --- | --- |"]
    for p in PRIMITIVES.values():
        infix = f" (`{p.infix}`)" if p.infix else ""
        formula = p.formula.replace("|", "\\|")
        rows.append(f"| `{p.name}`{infix} | {p.arity} | {formula} | {p.shape} |")
    return "\n".join(rows)


__doc__ += "\nThe primitives (generated from the registry):\n\n" + primitive_table() + "\n"
