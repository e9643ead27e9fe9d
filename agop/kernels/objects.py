r"""Kernel objects with one interface for estimators: ``kernel(X, Z, M=M)`` and
``kernel.agop(X, Z, dual_coef, M=M)`` (:class:`Kernel`), and the registry ``KERNELS`` of
kernels by name (:func:`get_kernel`).

A patch kernel is one subclass of :class:`Kernel`, registered by name in its class statement
(``class RBF(Kernel, name="rbf")``), that supplies :meth:`Kernel.block`, the kernel on one tile
of image pairs from the same-position inner products of their metric-transformed patches. The
base class checks the inputs, evaluates the tiles within the memory budget and computes the
patch-AGOP, with derivatives by autograd through ``block`` unless the subclass overrides
:meth:`Kernel.grad_block` with a hand-derived fast path.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch

from agop._typing import ArrayLike, Device, Tensor
from agop.kernels import _driver
from agop.kernels._driver import PatchGrid
from agop.kernels._inputs import (
    check_dual_coef,
    check_pair,
    check_patch_size,
    checked_result,
    metric_factor,
)
from agop.validation import ArgumentTypeError, check_bool, check_choice

#: the kernel classes by name, filled by ``class ...(Kernel, name=...)`` (:func:`get_kernel`)
KERNELS: dict[str, type[Kernel]] = {}


@dataclasses.dataclass
class Kernel:
    r"""The interface every kernel object shares (:class:`agop.kernels.Laplace`,
    :class:`agop.kernels.RBF`, :class:`agop.kernels.CNNGP`, :class:`agop.kernels.CNTK`;
    :func:`get_kernel` returns one), so that an estimator works with any of them:

    * ``kernel(X, Z=None, *, M=None, out=None)`` -- the ``(n, m)`` matrix :math:`K_M(X, Z)`
      of images ``X`` ``(n, c, H, W)`` and ``Z`` ``(m, c, H, W)`` (``Z=None``: the symmetric
      :math:`K_M(X, X)`), in the metric ``M`` (a :math:`q \times q` PSD matrix,
      :math:`q = c k^2`; ``None``: the identity), written into ``out`` when given;
    * ``kernel.agop(X, Z, dual_coef, *, M=None)`` -- the :math:`q \times q` patch-AGOP of
      :math:`f(x) = K_M(x, Z)\, \alpha` (:math:`\alpha` = ``dual_coef``, ``(m,)`` or
      ``(m, C)``) over the images ``X``.

    Keyword arguments of every kernel: ``device`` (None: CUDA when available), ``max_memory``
    (bytes; None: a safe share of free memory), ``progress`` (None: a bar for long runs) and
    ``threads`` (CPU worker threads; None: every usable core,
    :func:`agop.kernels.choose_threads`). Its first field is ``patch_size`` :math:`k`; a field
    ``padding`` (zeros around each image) and a field ``depth`` (VALID convolutions the
    patches must fit; :func:`get_kernel` and the estimators pass ``depth`` only to a kernel
    with this field) are read when present.

    **A new kernel** is a dataclass subclass with a name, its parameters as fields and
    :meth:`block`; that is all (:class:`agop.kernels.RBF` is one)::

        @dataclasses.dataclass
        class Linear(Kernel, name="linear"):  # now in KERNELS: get_kernel("linear", 3)
            def block(self, S, sx, sz, grid):
                return S.mean(0)  # (1/P) sum_j <x[j], z[j]>_M

    Its patch-AGOP then comes from autograd through ``block`` (:meth:`grad_block`); a kernel
    may override :meth:`grad_block` with a hand-derived fast path (the Laplace kernel and the
    arc-cosine kernels do), which the test suite checks against autograd of the same block.

    Examples:
        >>> import torch
        >>> X = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> kernel = get_kernel("cnngp", 3)
        >>> isinstance(kernel, Kernel), tuple(kernel(X).shape)
        (True, (3, 3))
        >>> tuple(kernel.agop(X, X, torch.ones(3, dtype=torch.float64), M=None).shape)
        (9, 9)
    """

    #: the registered name (``None``: not registered)
    name: ClassVar[str | None] = None
    #: whether autograd can follow ``kernel(X, Z)`` to ``X`` and ``Z`` (a kernel whose tiles
    #: work in place sets ``False``: it then computes on detached images, values only)
    differentiable: ClassVar[bool] = True

    device: Device | None = dataclasses.field(default=None, kw_only=True)
    max_memory: int | None = dataclasses.field(default=None, kw_only=True)
    progress: bool | None = dataclasses.field(default=None, kw_only=True)
    threads: int | None = dataclasses.field(default=None, kw_only=True)
    patch_size: int

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        """Register the subclass in ``KERNELS`` under ``name`` (lower case) when given."""
        super().__init_subclass__(**kwargs)
        cls.name = None
        if name is None:
            return
        if not isinstance(name, str) or not name or name != name.lower():
            raise ValueError(f"a kernel's name must be a non-empty lower-case str, got {name!r}")
        known = KERNELS.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"a kernel named {name!r} is already registered: {known.__qualname__}")
        cls.name = name
        KERNELS[name] = cls

    # ---- what a kernel supplies ----------------------------------------------------------

    def block(self, S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid) -> Tensor:
        r"""The kernel on one tile of image pairs, ``(tn, tm)``, from same-position inner
        products of the transformed patches :math:`u[j] = M^{1/2} x[j]`:
        ``S[j, x, z]`` :math:`= \langle u_x[j], u_z[j] \rangle`, ``(P, tn, tm)``;
        ``sx[j, x, :]`` :math:`= \|u_x[j]\|^2`, ``(P, tn, 1)`` or per pair ``(P, tn, tm)``;
        ``sz[j, :, z]`` :math:`= \|u_z[j]\|^2`, ``(P, 1, tm)``. Positions ``j`` are laid
        out as ``grid`` says (:class:`agop.kernels._driver.PatchGrid`). ``S`` belongs to the
        block (it may be overwritten); ``sx`` and ``sz`` must not be. Written with broadcasting,
        so that a per-pair ``sx`` works, and with torch operations only (no ``.item()``), so
        that autograd can differentiate it (in-place operations are fine).

        Examples:
            The Laplace kernel of one position is :math:`\exp(-\|u_x - u_z\| / L)`:

            >>> import torch
            >>> from agop.kernels import Laplace
            >>> from agop.kernels._driver import PatchGrid
            >>> S = torch.tensor([[[3.0]]])  # <u_x, u_z> = 3, |u_x|^2 = 5, |u_z|^2 = 2
            >>> K = Laplace(1, bandwidth=1.0).block(S, torch.tensor([[[5.0]]]),
            ...                                     torch.tensor([[[2.0]]]), PatchGrid(1, 1, 1, 1))
            >>> torch.allclose(K, torch.exp(-torch.tensor([[1.0]])))  # |u_x - u_z|^2 = 1
            True
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define block(S, sx, sz, grid), the kernel on a tile"
        )

    def grad_block(
        self, S: Tensor, sx: Tensor, sz: Tensor, grid: PatchGrid
    ) -> tuple[Tensor, Tensor]:
        r"""The derivatives of the tile :meth:`block` in each pair's row patches, as two
        ``(P, tn, tm)`` coefficients: :math:`a = \partial K(x, z) / \partial S[j]` and
        :math:`b = 2\, \partial K(x, z) / \partial s_x[j]`, so that

        .. math:: \nabla_{u_x[j]} K(x, z) = a[j, x, z]\, u_z[j] + b[j, x, z]\, u_x[j]

        (a kernel that sees the patches through their inner products has exactly this
        gradient). Here by autograd through :meth:`block` (``torch.func.vjp`` of its
        functionalised form, so in-place operations are differentiated too), with ``sx``
        made a per-pair variable: one backward pass over the whole tile. A kernel may override
        it with a hand-derived fast path; the test suite checks every registered kernel's
        against this one.

        Examples:
            For the Laplace kernel of one position, :math:`a = -b = e^{-d/L} / (L d)`:

            >>> import math, torch
            >>> from agop.kernels import Laplace
            >>> from agop.kernels._driver import PatchGrid
            >>> kernel, grid = Laplace(1, bandwidth=1.0), PatchGrid(1, 1, 1, 1)
            >>> S, sx, sz = (torch.tensor([[[v]]], dtype=torch.float64) for v in (3.0, 5.0, 2.0))
            >>> a, b = Kernel.grad_block(kernel, S.clone(), sx, sz, grid)  # autograd: d = 1
            >>> round(a.item(), 12) == round(math.exp(-1.0), 12) == -round(b.item(), 12)
            True
            >>> fast = kernel.grad_block(S.clone(), sx, sz, grid)  # its hand-derived fast path
            >>> torch.allclose(fast[0], a) and torch.allclose(fast[1], b)
            True
        """
        sx = sx.expand(S.shape).contiguous()  # a variable per pair: d/dsx is per pair

        def tile(S: Tensor, sx: Tensor) -> Tensor:
            return self.block(S.clone(), sx, sz, grid)  # the block may overwrite its copy

        K, pullback = torch.func.vjp(torch.func.functionalize(tile), S, sx)[:2]
        a, b = pullback(torch.ones_like(K))
        return a, b.mul_(2.0)

    def _check_params(self) -> None:
        """Check the kernel's own parameters (besides ``patch_size``, ``padding``, ``depth``);
        called at every evaluation."""

    def _pair_tensors(self, grad: bool) -> float:
        """``(P,)``-sized tensors a tile keeps live per pair of images (sizes the tiles): the
        block's, or its gradient's when ``grad``."""
        return 16.0 if grad else 6.0

    # ---- what the base class does with it ------------------------------------------------

    def __call__(
        self,
        X: ArrayLike,
        Z: ArrayLike | None = None,
        *,
        M: ArrayLike | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        """The kernel matrix :math:`K_M(X, Z)`, ``(n, m)``, in ``X``'s dtype."""
        X, Z, _ = check_pair(X, Z, self.device, self.differentiable)
        return self._matrix(X, Z, self._checked_root(X, M), out)

    def agop(
        self, X: ArrayLike, Z: ArrayLike, dual_coef: ArrayLike, *, M: ArrayLike | None = None
    ) -> Tensor:
        r"""The patch-AGOP of :math:`f(x) = K_M(x, Z)\, \alpha` over ``X``, :math:`q \times q`:

        .. math:: \mathrm{AGOP} = \frac1n \sum_{i=1}^n \sum_{j=1}^P \sum_c
                  \nabla_{x_i[j]} f_c \, \nabla_{x_i[j]} f_c^\top,

        each patch :math:`x[j]` an independent variable, gradients in the untransformed patch
        coordinates."""
        X, Z, _ = check_pair(X, Z, self.device, self.differentiable)
        root = self._checked_root(X, M)
        return self._agop(X, Z, check_dual_coef(dual_coef, Z.shape[0], X), root)

    # ---- the checks, once per public call, and the unchecked evaluations behind them ------

    def _check(self, X: Tensor) -> int:
        """Check the kernel's parameters against the images ``X`` (``patch_size``, ``padding``,
        ``depth``, ``progress`` and the kernel's own); the patch side ``k``."""
        if type(self).block is Kernel.block:
            raise TypeError(
                f"{type(self).__name__} defines no block(S, sx, sz, grid): it is the interface, "
                f"not a kernel; use one of {sorted(KERNELS)} (get_kernel) or a subclass"
            )
        padding, depth = getattr(self, "padding", 0), getattr(self, "depth", 1)
        k = check_patch_size(self.patch_size, X, padding, depth)
        if self.progress is not None:  # None: a bar for long runs only
            try:
                check_bool(self.progress, "progress")
            except ArgumentTypeError as err:
                raise ArgumentTypeError(
                    str(err).replace("True or False", "True, False or None")
                ) from None
        self._check_params()
        return k

    def _checked_root(self, X: Tensor, M: ArrayLike | None) -> Tensor | None:
        """The checked parameters, and the factor :math:`R = M^{1/2}` of a checked ``M``."""
        k = self._check(X)
        root = metric_factor(M, X.shape[1] * k * k, X)
        if root is not None and not self.differentiable:  # in-place tiles: values only
            root = root.detach()
        return root

    def _matrix(
        self, X: Tensor, Z: Tensor, root: Tensor | None, out: Tensor | None = None
    ) -> Tensor:
        """:math:`K_M(X, Z)` of checked images (``Z is X``: the symmetric matrix) and checked
        parameters, with ``root`` :math:`= M^{1/2}` (``None``: the identity); nothing is
        checked again but the result."""
        kernel, Xs, Zs, factor, _ = self._rescaled(X, Z, root)
        K = _driver.kernel_matrix(
            kernel._ops(Xs, root), Xs, Zs, Zs is Xs, out=out, **kernel._run("kernel")
        )
        if factor != 1.0:
            K.mul_(factor)
        return checked_result(K, f"{self._label()}(X, Z)", X, Z)

    def _agop(self, X: Tensor, Z: Tensor, dual_coef: Tensor, root: Tensor | None) -> Tensor:
        """The patch-AGOP of checked inputs (``dual_coef`` ``(m, C)``), as :meth:`_matrix`."""
        kernel, Xs, Zs, _, factor = self._rescaled(X, Z, root)
        # the patch-AGOP is quadratic in dual_coef: its scale goes there, so that the
        # gradients in the rescaled coordinates are of the size of the true ones
        coef = dual_coef if factor == 1.0 else dual_coef * factor
        A = _driver.patch_agop(
            kernel._ops(Xs, root), Xs, Zs, coef, root, **kernel._run("patch-AGOP")
        )
        return checked_result(A, f"{self._label()}_agop", X, Z, dual_coef)

    def _rescaled(
        self, X: Tensor, Z: Tensor, root: Tensor | None
    ) -> tuple[Kernel, Tensor, Tensor, float, float]:
        """``(kernel, X', Z', a, b)`` with :math:`K(X, Z) = a K'(X', Z')` and the patch-AGOP
        that of ``kernel`` on ``(X', Z')`` with ``b`` times ``dual_coef`` (the gradients in ``x``
        are those in ``x'`` times ``b``): a kernel with a scaling law evaluates
        on images rescaled by powers of 2 (exact) to magnitudes near 1, where squared norms
        neither overflow nor vanish (:class:`agop.kernels.Laplace`, the arc-cosine kernels).
        The base class: no rescaling."""
        return self, X, Z, 1.0, 1.0

    def _ops(self, X: Tensor, root: Tensor | None) -> _driver.TileOps:
        """The driver's tile operations for the images ``X`` (parameters already checked)."""
        k = self.patch_size[0] if isinstance(self.patch_size, (tuple, list)) else self.patch_size
        return _driver.TileOps(self, X, int(k), int(getattr(self, "padding", 0)), root)

    def _run(self, what: str) -> dict[str, Any]:
        """The driver's options: memory budget, progress bar (named ``what``), threads."""
        desc = f"{type(self).__name__} {what}"
        return dict(
            max_memory=self.max_memory, progress=self.progress, desc=desc, threads=self.threads
        )

    def _label(self) -> str:
        return self.name or type(self).__name__


def _pow2_scale(X: Tensor, root: Tensor | None, Z: Tensor | None = None) -> float:
    """A power of 2 that brings the transformed patches of ``X`` (and of ``Z`` when given;
    entries of ``root @ x`` at most ``max |X| max |root|`` times the patch size) to magnitudes
    near 1, within the range ``X``'s dtype can hold: a scale that multiplies exactly; ``1.0``
    for all-zero images and for magnitudes in ``[2^-16, 2^16]``, which need none."""
    top = max(float(T.detach().abs().max()) if T.numel() else 0.0 for T in (X, Z) if T is not None)
    if root is not None:
        top *= float(root.detach().abs().max())
    if top == 0.0 or not math.isfinite(top) or 2.0**-16 <= top <= 2.0**16:
        return 1.0  # magnitudes whose fourth powers float32 holds: nothing to do
    limit = math.frexp(torch.finfo(X.dtype).max)[1] - 8  # scaled images, scale stay finite
    return math.ldexp(1.0, max(-limit, min(limit, -math.frexp(top)[1])))


def kernel_function(cls: type[Kernel], args: dict[str, Any]) -> Tensor:
    """The body of a kernel function (:func:`agop.kernels.laplace`, ...): the kernel ``cls``
    built from the function's arguments ``args`` (its ``locals()``: the class's fields and the
    shared options), evaluated on them: the matrix ``K_M(X, Z)`` (written into ``out``), or
    the patch-AGOP when ``args`` holds a ``dual_coef``. The kernel object checks every
    argument, once.

    Examples:
        >>> import torch
        >>> from agop.kernels import Laplace, laplace
        >>> X = torch.rand(3, 1, 4, 4, dtype=torch.float64)
        >>> args = dict(X=X, Z=None, patch_size=3, bandwidth=2.0, M=None, out=None)
        >>> torch.equal(kernel_function(Laplace, args), laplace(X, None, 3, bandwidth=2.0))
        True
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    kernel = cls(**{name: value for name, value in args.items() if name in fields})
    if "dual_coef" in args:
        return kernel.agop(args["X"], args["Z"], args["dual_coef"], M=args["M"])
    return kernel(args["X"], args["Z"], M=args["M"], out=args["out"])


def fields_of(kernel: type[Kernel] | Kernel) -> set[str]:
    """The parameters of a kernel class or object besides ``patch_size`` (its dataclass
    fields, the shared ``device``, ``max_memory``, ``progress`` and ``threads`` included).

    Examples:
        >>> from agop.kernels import CNTK
        >>> sorted(fields_of(CNTK) - fields_of(Kernel))
        ['depth', 'kind']
    """
    return {f.name for f in dataclasses.fields(kernel)} - {"patch_size"}


def get_kernel(
    kernel: str | Kernel, patch_size: int | None = None, depth: int | None = None, **kw: Any
) -> Kernel:
    """A kernel object from a registered name (``KERNELS``: ``'laplace'``, ``'rbf'``,
    ``'cnngp'``, ``'cntk'``, any case; with ``patch_size``, ``depth`` for a kernel with a depth
    (the CNTK), and keyword arguments of its class) or an existing kernel object (returned as
    is). An argument the kernel does not use raises ``ValueError``.

    Examples:
        >>> get_kernel("CNTK", 3, depth=2)
        CNTK(device=None, ..., patch_size=3, depth=2, kind='ntk')
        >>> get_kernel("laplace", 5, bandwidth=4.0).bandwidth
        4.0
        >>> get_kernel("laplace", 5, depth=2)
        Traceback (most recent call last):
        ...
        ValueError: depth does not apply to the 'laplace' kernel (its parameters: ...)
    """
    if isinstance(kernel, Kernel):
        return kernel
    if not isinstance(kernel, str):
        raise ValueError(
            f"kernel must be one of {sorted(KERNELS)} or a kernel object, got {kernel!r}"
        )
    name = check_choice(kernel, "kernel", sorted(KERNELS))
    if patch_size is None:
        raise ValueError("patch_size is required to build a kernel from its name")
    cls = KERNELS[name]
    fields = fields_of(cls)
    unused = sorted(set(kw) - fields) + (
        ["depth"] if "depth" not in fields and depth not in (None, 1) else []
    )
    if unused:
        raise ValueError(
            f"{', '.join(unused)} do{'es' if len(unused) == 1 else ''} not apply "
            f"to the {name!r} kernel (its parameters: patch_size, "
            f"{', '.join(sorted(fields))})"
        )
    if "depth" in fields and depth is not None:
        kw["depth"] = depth
    return cls(patch_size, **kw)
