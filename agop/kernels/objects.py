"""Kernel objects with one interface for estimators: ``kernel(X, Z, M)`` and ``kernel.agop``."""

from __future__ import annotations

import dataclasses

import torch

from agop.kernels.cntk import cnngp, cnngp_agop, cntk, cntk_agop
from agop.kernels.laplace import laplace, laplace_agop
from agop.validation import check_choice


@dataclasses.dataclass
class _Kernel:
    """Common keyword arguments: ``device`` (None: CUDA when available), ``max_memory`` (bytes;
    None: a safe share of free memory), ``progress`` (None: a bar for long runs) and
    ``threads`` (CPU intra-op threads; None: chosen per call from the machine's load)."""

    device: str | torch.device | None = dataclasses.field(default=None, kw_only=True)
    max_memory: int | None = dataclasses.field(default=None, kw_only=True)
    progress: bool | None = dataclasses.field(default=None, kw_only=True)
    threads: int | None = dataclasses.field(default=None, kw_only=True)

    def _opts(self) -> dict:
        return {"device": self.device, "max_memory": self.max_memory, "progress": self.progress,
                "threads": self.threads}


@dataclasses.dataclass
class Laplace(_Kernel):
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

    def __call__(self, X, Z=None, M=None, *, out=None) -> torch.Tensor:
        return laplace(X, Z, self.patch_size, M, self.bandwidth, self.padding, out=out,
                       **self._opts())

    def agop(self, X, Z, alpha, M=None) -> torch.Tensor:
        return laplace_agop(X, Z, alpha, self.patch_size, M, self.bandwidth, self.padding,
                            **self._opts())


@dataclasses.dataclass
class CNNGP(_Kernel):
    """NNGP of one hidden ReLU conv layer with a fully connected read-out (:func:`agop.kernels.cnngp`).

    Examples:
        >>> import torch
        >>> X = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> alpha = torch.ones(3, 1, dtype=torch.float64)
        >>> A = CNNGP(patch_size=3).agop(X, X, alpha)  # the patch-AGOP of f = K(., X) alpha
        >>> tuple(A.shape), bool(torch.linalg.eigvalsh(A).min() > -1e-12)
        ((9, 9), True)
    """

    patch_size: int
    padding: int = 0

    def __call__(self, X, Z=None, M=None, *, out=None) -> torch.Tensor:
        return cnngp(X, Z, self.patch_size, M, self.padding, out=out, **self._opts())

    def agop(self, X, Z, alpha, M=None) -> torch.Tensor:
        return cnngp_agop(X, Z, alpha, self.patch_size, M, self.padding, **self._opts())


@dataclasses.dataclass
class CNTK(_Kernel):
    """Deep convolutional NTK (``kind="ntk"``) or NNGP (``kind="nngp"``) of ``depth`` layers
    (:func:`agop.kernels.cntk`).

    Examples:
        >>> import torch
        >>> X = torch.rand(3, 2, 5, 5, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> M = torch.eye(18, dtype=torch.float64)  # the identity metric is the default
        >>> torch.allclose(CNTK(3, depth=2)(X, X, M), CNTK(3, depth=2)(X))
        True
    """

    patch_size: int
    depth: int = 1
    kind: str = "ntk"

    def __call__(self, X, Z=None, M=None, *, out=None) -> torch.Tensor:
        return cntk(X, Z, self.patch_size, self.depth, M, self.kind, out=out, **self._opts())

    def agop(self, X, Z, alpha, M=None) -> torch.Tensor:
        return cntk_agop(X, Z, alpha, self.patch_size, self.depth, M, self.kind, **self._opts())


KERNELS = {"laplace": Laplace, "cnngp": CNNGP, "cntk": CNTK}


def get_kernel(kernel, patch_size: int | None = None, depth: int | None = None, **kw) -> _Kernel:
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
    if isinstance(kernel, _Kernel):
        return kernel
    if not isinstance(kernel, str):
        raise ValueError(f"kernel must be one of {sorted(KERNELS)} or a kernel object, "
                         f"got {kernel!r}")
    name = check_choice(kernel, "kernel", sorted(KERNELS))
    if patch_size is None:
        raise ValueError("patch_size is required to build a kernel from its name")
    fields = {f.name for f in dataclasses.fields(KERNELS[name])} - {"patch_size"}
    unused = sorted(set(kw) - fields) + (["depth"] if name != "cntk" and depth not in (None, 1)
                                         else [])
    if unused:
        raise ValueError(f"{', '.join(unused)} do{'es' if len(unused) == 1 else ''} not apply "
                         f"to the {name!r} kernel (its parameters: patch_size, "
                         f"{', '.join(sorted(fields))})")
    if name == "cntk":
        return CNTK(patch_size, 1 if depth is None else depth, **kw)
    return KERNELS[name](patch_size, **kw)
