"""How localised a vector is: the inverse participation ratio.

For ``v`` in ``R^D``::

    IPR(v) = sum_i v_i^4 / (sum_i v_i^2)^2,          1/D <= IPR(v) <= 1.

It is ``1`` for a vector on one site, ``1/D`` for a vector spread evenly over all ``D`` sites,
and about ``3/D`` for a vector of i.i.d. Gaussian entries (``E[v^4] = 3 E[v^2]^2``). A vector
spread evenly over ``m`` sites has ``IPR = 1/m``, so ``1/IPR`` reads as the number of sites the
vector occupies. It is invariant to the scale and the sign of ``v`` and to a permutation of its
sites. Used on the first-layer receptive fields of a network and on the top eigenvectors of an
AGOP or an RFM's metric ``M``.
"""

from __future__ import annotations

import torch

from agop.validation import as_tensor, check_finite


def ipr(v, dim: int = -1) -> torch.Tensor:
    """Inverse participation ratio ``sum_i v_i^4 / (sum_i v_i^2)^2`` along ``dim``.

    ``v`` may hold a batch of vectors (e.g. the rows of a weight matrix, with ``dim=-1``); the
    sites may span several axes only after flattening them. A zero vector has no localisation:
    it raises ``ValueError``.
    """
    v = check_finite(as_tensor(v, "v"), "v")
    if v.ndim == 0 or v.shape[dim] == 0:
        raise ValueError(f"v must have at least one site along dim={dim}, got shape "
                         f"{tuple(v.shape)}")
    # Scale by the largest entry first, so that neither the square nor the fourth power
    # overflows or underflows.
    scale = v.abs().amax(dim=dim, keepdim=True)
    if bool((scale == 0).any()):
        raise ValueError("v holds a zero vector, whose participation ratio is undefined")
    u = v / scale
    u2 = u * u
    return (u2 * u2).sum(dim) / u2.sum(dim) ** 2

