"""The fully connected RFM: Algorithm 1 on whole inputs, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from agop.rfm import RFM


def laplace(X, Z, M, L):
    """exp(-|x - z|_M / L) by explicit differences (no patches, no tiling)."""
    d = X[:, None, :] - Z[None, :, :]
    return torch.exp(-torch.sqrt(torch.einsum("ijk,kl,ijl->ij", d, M, d).clamp_min(0)) / L)


def agop_by_autograd(X_s, X, alpha, M, L):
    """(1/n) sum_i sum_c grad f_c(x_i) grad f_c(x_i)^T of f(x) = K_M(x, X) alpha."""
    J = torch.func.vmap(torch.func.jacrev(lambda x: (laplace(x[None], X, M, L) @ alpha)[0]))(
        X_s
    )  # (n, C, D)
    return torch.einsum("ncd,nce->de", J, J) / X_s.shape[0]


def test_rounds_are_algorithm_1_on_whole_inputs():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 6, dtype=torch.float64, generator=g)
    y = (X[:, 1] - X[:, 4] > 0).long().numpy()
    rfm = RFM(n_iter=2, random_state=0, bandwidth=3.0, ridges=[1e-3], progress=False).fit(X, y)
    assert rfm.M_.shape == (6, 6)
    # M_{t+1}: the normalised AGOP of f_t = K_{M_t}(., X) alpha_t, by autograd
    X_tr = rfm.X_fit_.reshape(rfm.X_fit_.shape[0], -1)
    for t in (0, 1):
        A = agop_by_autograd(X_tr, X_tr, rfm.dual_coefs_[t], rfm.Ms_[t], 3.0)
        torch.testing.assert_close(
            rfm.Ms_[t + 1], A / torch.linalg.eigvalsh(A)[-1], rtol=1e-6, atol=1e-9
        )
    # the learned metric weighs the direction that carries the label: e_1 - e_4
    top = torch.linalg.eigh(rfm.M_)[1][:, -1]
    v = torch.zeros(6, dtype=torch.float64)
    v[1], v[4] = 1, -1
    assert abs(float(top @ v)) / v.norm() > 0.9


def test_predictions_are_the_kernel_machine():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(40, 5, dtype=torch.float64, generator=g)
    y = (X[:, 0] > 0).long().numpy()
    rfm = RFM(n_iter=1, random_state=0, bandwidth=2.0, ridges=[1e-2], progress=False).fit(X, y)
    Z = torch.randn(7, 5, dtype=torch.float64, generator=g)
    X_tr = rfm.X_fit_.reshape(rfm.X_fit_.shape[0], -1)
    f = laplace(Z, X_tr, rfm.M_, 2.0) @ rfm.dual_coef_
    np.testing.assert_allclose(
        rfm.decision_function(Z), (f[:, 1] - f[:, 0]).numpy(), rtol=1e-8, atol=1e-10
    )


def test_inputs_of_any_shape_are_flattened_and_params_are_sklearn():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(30, 3, 4, dtype=torch.float64, generator=g)
    y = (X[:, 0, 0] > 0).long().numpy()
    a = RFM(n_iter=1, random_state=0, progress=False).fit(X, y)
    b = clone(a).fit(X.reshape(30, 12), y)
    assert a.M_.shape == (12, 12)
    torch.testing.assert_close(a.M_, b.M_)
    assert "patch_size" not in a.get_params() and a.get_params()["bandwidth"] == 10.0
    with pytest.raises(ValueError, match="features"):
        a.predict(X.reshape(30, 12)[:, :5])
