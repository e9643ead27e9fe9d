"""Kernel objects with one interface for estimators: ``kernel(X, Z, M=M)`` and
``kernel.agop(X, Z, dual_coef, M=M)`` (:class:`Kernel`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from agop._typing import ArrayLike, Device, Tensor
from agop.kernels.cntk import cnngp, cnngp_agop, cntk, cntk_agop
from agop.kernels.laplace import laplace, laplace_agop
from agop.validation import check_choice


@dataclasses.dataclass
class Kernel:
    r"""The interface every kernel object shares (:class:`Laplace`, :class:`CNNGP`,
    :class:`CNTK`; :func:`get_kernel` returns one), so that an estimator works with any of them:

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
    :func:`agop.kernels.choose_threads`).

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

    device: Device | None = dataclasses.field(default=None, kw_only=True)
    max_memory: int | None = dataclasses.field(default=None, kw_only=True)
    progress: bool | None = dataclasses.field(default=None, kw_only=True)
    threads: int | None = dataclasses.field(default=None, kw_only=True)

    def __call__(
        self,
        X: ArrayLike,
        Z: ArrayLike | None = None,
        *,
        M: ArrayLike | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        """The kernel matrix :math:`K_M(X, Z)`, ``(n, m)``."""
        raise NotImplementedError

    def agop(
        self, X: ArrayLike, Z: ArrayLike, dual_coef: ArrayLike, *, M: ArrayLike | None = None
    ) -> Tensor:
        r"""The patch-AGOP of :math:`f(x) = K_M(x, Z)\, \alpha` over ``X``, :math:`q \times q`."""
        raise NotImplementedError

    def _opts(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "max_memory": self.max_memory,
            "progress": self.progress,
            "threads": self.threads,
        }


@dataclasses.dataclass
class Laplace(Kernel):
    r"""The Laplace kernel :math:`K_M(x, z) = \frac1P \sum_j \exp(-\|x[j] - z[j]\|_M / L)`,
    :math:`L` = ``bandwidth`` (:func:`agop.kernels.laplace`).

    Examples:
        >>> import torch
        >>> from agop.kernels import laplace
        >>> X = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> kernel = Laplace(patch_size=3, bandwidth=2.0)
        >>> torch.equal(kernel(X), laplace(X, X, 3, bandwidth=2.0))
        True
    """

    patch_size: int
    bandwidth: float = 10.0
    padding: int = 0

    def __call__(
        self,
        X: ArrayLike,
        Z: ArrayLike | None = None,
        *,
        M: ArrayLike | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        return laplace(
            X, Z, self.patch_size, self.bandwidth, self.padding, M=M, out=out, **self._opts()
        )

    def agop(
        self, X: ArrayLike, Z: ArrayLike, dual_coef: ArrayLike, *, M: ArrayLike | None = None
    ) -> Tensor:
        return laplace_agop(
            X, Z, dual_coef, self.patch_size, self.bandwidth, self.padding, M=M, **self._opts()
        )


@dataclasses.dataclass
class CNNGP(Kernel):
    """NNGP of one hidden ReLU conv layer with a fully connected read-out (:func:`agop.kernels.cnngp`).

    Examples:
        >>> import torch
        >>> X = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> dual_coef = torch.ones(3, 1, dtype=torch.float64)
        >>> A = CNNGP(patch_size=3).agop(X, X, dual_coef)  # the patch-AGOP of K(., X) dual_coef
        >>> tuple(A.shape), bool(torch.linalg.eigvalsh(A).min() > -1e-12)
        ((9, 9), True)
    """

    patch_size: int
    padding: int = 0

    def __call__(
        self,
        X: ArrayLike,
        Z: ArrayLike | None = None,
        *,
        M: ArrayLike | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        return cnngp(X, Z, self.patch_size, self.padding, M=M, out=out, **self._opts())

    def agop(
        self, X: ArrayLike, Z: ArrayLike, dual_coef: ArrayLike, *, M: ArrayLike | None = None
    ) -> Tensor:
        return cnngp_agop(X, Z, dual_coef, self.patch_size, self.padding, M=M, **self._opts())


@dataclasses.dataclass
class CNTK(Kernel):
    """Deep convolutional NTK (``kind="ntk"``) or NNGP (``kind="nngp"``) of ``depth`` layers
    (:func:`agop.kernels.cntk`).

    Examples:
        >>> import torch
        >>> X = torch.rand(3, 2, 5, 5, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> M = torch.eye(18, dtype=torch.float64)  # the identity metric is the default
        >>> torch.allclose(CNTK(3, depth=2)(X, X, M=M), CNTK(3, depth=2)(X))
        True
    """

    patch_size: int
    depth: int = 1
    kind: str = "ntk"

    def __call__(
        self,
        X: ArrayLike,
        Z: ArrayLike | None = None,
        *,
        M: ArrayLike | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        return cntk(X, Z, self.patch_size, self.depth, self.kind, M=M, out=out, **self._opts())

    def agop(
        self, X: ArrayLike, Z: ArrayLike, dual_coef: ArrayLike, *, M: ArrayLike | None = None
    ) -> Tensor:
        return cntk_agop(
            X, Z, dual_coef, self.patch_size, self.depth, self.kind, M=M, **self._opts()
        )


KERNELS: dict[str, type[Laplace] | type[CNNGP] | type[CNTK]] = {
    "laplace": Laplace,
    "cnngp": CNNGP,
    "cntk": CNTK,
}


def get_kernel(
    kernel: str | Kernel, patch_size: int | None = None, depth: int | None = None, **kw: Any
) -> Kernel:
    """A kernel object from ``'laplace' | 'cnngp' | 'cntk'`` (any case; with ``patch_size``,
    ``depth`` for the CNTK, and keyword arguments of its class) or an existing kernel object
    (returned as is). An argument the kernel does not use raises ``ValueError``.

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
    fields = {f.name for f in dataclasses.fields(KERNELS[name])} - {"patch_size"}
    unused = sorted(set(kw) - fields) + (
        ["depth"] if name != "cntk" and depth not in (None, 1) else []
    )
    if unused:
        raise ValueError(
            f"{', '.join(unused)} do{'es' if len(unused) == 1 else ''} not apply "
            f"to the {name!r} kernel (its parameters: patch_size, "
            f"{', '.join(sorted(fields))})"
        )
    if name == "cntk":
        return CNTK(patch_size, 1 if depth is None else depth, **kw)
    return KERNELS[name](patch_size, **kw)
