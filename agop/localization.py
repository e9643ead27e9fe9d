r"""How localised a vector is: the inverse participation ratio.

For :math:`v \in \mathbb{R}^D`,

.. math:: \mathrm{IPR}(v) = \frac{\sum_i v_i^4}{\bigl(\sum_i v_i^2\bigr)^2},
          \qquad \frac1D \le \mathrm{IPR}(v) \le 1.

It is 1 for a vector on one site, :math:`1/D` for a vector spread evenly over all :math:`D`
sites, and about :math:`3/D` for a vector of i.i.d. Gaussian entries
(:math:`E[v^4] = 3 E[v^2]^2`). A vector
spread evenly over ``m`` sites has ``IPR = 1/m``, so ``1/IPR`` reads as the number of sites the
vector occupies. It is invariant to the scale and the sign of ``v`` and to a permutation of its
sites. Used on the first-layer receptive fields of a network and on the top eigenvectors of an
AGOP or an RFM's metric ``M``.
"""

from __future__ import annotations

import torch

from agop._typing import ArrayLike
from agop.validation import as_tensor, check_finite


def ipr(v: ArrayLike, dim: int = -1) -> torch.Tensor:
    r"""Inverse participation ratio :math:`\sum_i v_i^4 / (\sum_i v_i^2)^2` along ``dim``.

    ``v`` may hold a batch of vectors (e.g. the rows of a weight matrix, with ``dim=-1``); the
    sites may span several axes only after flattening them. A zero vector has no localisation:
    it raises ``ValueError``.

    Examples:
        >>> import torch
        >>> ipr(torch.tensor([0.0, -3.0, 0.0, 0.0])), ipr(torch.ones(4))  # one site; all 4
        (tensor(1.), tensor(0.2500))
        >>> ipr(torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]]))  # row by row
        tensor([0.5000, 1.0000])
    """
    v = check_finite(as_tensor(v, "v"), "v")
    if v.ndim == 0 or v.shape[dim] == 0:
        raise ValueError(
            f"v must have at least one site along dim={dim}, got shape {tuple(v.shape)}"
        )
    # Scale by the largest entry first, so that neither the square nor the fourth power
    # overflows or underflows.
    scale = v.abs().amax(dim=dim, keepdim=True)
    if bool((scale == 0).any()):
        raise ValueError("v holds a zero vector, whose participation ratio is undefined")
    u = v / scale
    u2 = u * u
    return (u2 * u2).sum(dim) / u2.sum(dim) ** 2
