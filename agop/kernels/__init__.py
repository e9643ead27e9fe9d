r"""Convolutional kernels on patches with a learned metric :math:`M`, and their patch-AGOPs.

* :func:`laplace` — :math:`\frac1P \sum_j \exp(-\|x[j] - z[j]\|_M / L)`
* :class:`RBF` — the Gaussian kernel :math:`\frac1P \sum_j \exp(-\|x[j] - z[j]\|_M^2 / (2 L^2))`
* :func:`cnngp` — one hidden ReLU conv layer, arc-cosine kernel per patch
* :func:`cntk` — deep CNTK/CNNGP, equal to Neural Tangents' ``stax`` kernel of the
  architecture defined in the book's appendix *Kernels on patches* (``book/92_kernels.md``)
* ``*_agop`` — the patch-AGOP of :math:`f(x) = K(x, Z)\,\alpha` (:math:`\alpha` = ``dual_coef``)
* :class:`Kernel` (the interface, and the base class of every kernel), :class:`Laplace`,
  :class:`RBF`, :class:`CNNGP`, :class:`CNTK`, :func:`get_kernel` — kernel objects, by name
  in ``agop.kernels.objects.KERNELS``

All evaluate in tiles inside a memory budget (``max_memory`` bytes), in the caller's dtype,
on ``device`` (None: CUDA when available), with :func:`choose_threads` worker threads sharing
the tiles on the CPU (``threads=`` overrides it per call).
"""

from agop.kernels._driver import choose_threads
from agop.kernels.cntk import CNNGP, CNTK, cnngp, cnngp_agop, cntk, cntk_agop
from agop.kernels.laplace import Laplace, laplace, laplace_agop
from agop.kernels.objects import Kernel, get_kernel
from agop.kernels.rbf import RBF

__all__ = [
    "laplace",
    "laplace_agop",
    "cnngp",
    "cnngp_agop",
    "cntk",
    "cntk_agop",
    "Kernel",
    "Laplace",
    "RBF",
    "CNNGP",
    "CNTK",
    "get_kernel",
    "choose_threads",
]
