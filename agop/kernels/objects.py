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
    None: a safe share of free memory) and ``progress`` (None: a bar for long runs)."""

    device: str | torch.device | None = dataclasses.field(default=None, kw_only=True)
    max_memory: int | None = dataclasses.field(default=None, kw_only=True)
    progress: bool | None = dataclasses.field(default=None, kw_only=True)

    def _opts(self) -> dict:
        return {"device": self.device, "max_memory": self.max_memory, "progress": self.progress}


@dataclasses.dataclass
class Laplace(_Kernel):
    """``K_M(x, z) = (1/P) sum_j exp(-|x[j] - z[j]|_M / L)``, ``L = bandwidth``."""

    patch_size: int
    bandwidth: float = 10.0
    padding: int = 0

    def __call__(self, X, Z=None, M=None) -> torch.Tensor:
        return laplace(X, Z, self.patch_size, M, self.bandwidth, self.padding, **self._opts())

    def agop(self, X, Z, alpha, M=None) -> torch.Tensor:
        return laplace_agop(X, Z, alpha, self.patch_size, M, self.bandwidth, self.padding,
                            **self._opts())


@dataclasses.dataclass
class CNNGP(_Kernel):
    """NNGP of one hidden ReLU conv layer with a fully connected read-out."""

    patch_size: int
    padding: int = 0

    def __call__(self, X, Z=None, M=None) -> torch.Tensor:
        return cnngp(X, Z, self.patch_size, M, self.padding, **self._opts())

    def agop(self, X, Z, alpha, M=None) -> torch.Tensor:
        return cnngp_agop(X, Z, alpha, self.patch_size, M, self.padding, **self._opts())


@dataclasses.dataclass
class CNTK(_Kernel):
    """Deep convolutional NTK (``kind="ntk"``) or NNGP (``kind="nngp"``) of ``depth`` layers."""

    patch_size: int
    depth: int = 1
    kind: str = "ntk"

    def __call__(self, X, Z=None, M=None) -> torch.Tensor:
        return cntk(X, Z, self.patch_size, self.depth, M, self.kind, **self._opts())

    def agop(self, X, Z, alpha, M=None) -> torch.Tensor:
        return cntk_agop(X, Z, alpha, self.patch_size, self.depth, M, self.kind, **self._opts())


KERNELS = {"laplace": Laplace, "cnngp": CNNGP, "cntk": CNTK}


def get_kernel(kernel, patch_size: int | None = None, depth: int | None = None, **kw) -> _Kernel:
    """A kernel object from ``'laplace' | 'cnngp' | 'cntk'`` (any case; with ``patch_size``,
    ``depth`` for the CNTK, and keyword arguments of its class) or an existing kernel object
    (returned as is). An argument the kernel does not use raises ``ValueError``."""
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
