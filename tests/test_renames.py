"""The renamed arguments and attributes of this release: each old name still works for one
release, gives the same result as the new one, and warns with a FutureWarning that names the
new one; passing both names is an error. The signatures (and scikit-learn's ``get_params``)
show only the new names."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from sklearn.base import clone

from agop import kernels as K
from agop.baseline import CNNBaseline, validation_split
from agop.data import bars_in_noise, train_val_split
from agop.deep_rfm import DeepConvRFM
from agop.features import layer_correlations, null_baselines, patch_agop
from agop.linalg import psd_power
from agop.nets import SimpleCNN
from agop.rfm import RFM, ConvRFM
from agop.solve import RidgeSweep, ridge, select_ridge
from agop.validation import renamed_arguments

G = torch.Generator().manual_seed(0)
X = torch.rand(4, 1, 5, 5, generator=G, dtype=torch.float64)
COEF = torch.randn(4, 2, generator=G, dtype=torch.float64)
B = torch.randn(6, 6, generator=G, dtype=torch.float64)
KM = B @ B.T
Y = torch.randn(6, 2, generator=G, dtype=torch.float64)
NET = SimpleCNN(1, 2, image_size=5, depth=1, width=3, seed=0).double().eval()
AGOPS = patch_agop(NET, X, device="cpu")

# (function, old keyword, new keyword, value, the other arguments)
CALLS = [
    (K.laplace_agop, "alpha", "dual_coef", COEF, dict(X=X, Z=X, patch_size=3)),
    (K.cnngp_agop, "alpha", "dual_coef", COEF, dict(X=X, Z=X, patch_size=3)),
    (K.cntk_agop, "alpha", "dual_coef", COEF, dict(X=X, Z=X, patch_size=3, depth=1)),
    (K.CNTK(3).agop, "alpha", "dual_coef", COEF, dict(X=X, Z=X)),
    (K.Laplace(3).agop, "alpha", "dual_coef", COEF, dict(X=X, Z=X)),
    (ridge, "lam", "ridge", 0.5, dict(K=KM, Y=Y)),
    (RidgeSweep(KM).solve, "lam", "ridge", 0.5, dict(Y=Y)),
    (
        select_ridge,
        "lambdas",
        "ridges",
        [1e-3, 1.0],
        dict(K_train=KM[:4, :4], Y_train=Y[:4], K_val=KM[4:, :4], Y_val=Y[4:]),
    ),
    (psd_power, "alpha", "power", 0.5, dict(A=KM)),
    (layer_correlations, "alpha", "power", 0.5, dict(model=NET, agops=AGOPS)),
    (null_baselines, "alpha", "power", 0.5, dict(conv_or_W=NET.convs[0], n_draws=2)),
    (
        train_val_split,
        "val_fraction",
        "validation_fraction",
        0.25,
        dict(X=torch.arange(8.0), Y=torch.tensor([0, 1] * 4)),
    ),
    (
        validation_split,
        "val_fraction",
        "validation_fraction",
        0.25,
        dict(codes=np.array([0, 1] * 4), random_state=0),
    ),
]


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize(
    "func, old, new, value, kw",
    CALLS,
    ids=[f"{getattr(c[0], '__qualname__', c[0])}-{c[1]}" for c in CALLS],
)
def test_an_old_keyword_warns_naming_the_new_one_and_gives_the_same_result(
    func, old, new, value, kw
):
    assert new in inspect.signature(func).parameters
    assert old not in inspect.signature(func).parameters
    expected = func(**kw, **{new: value})
    with pytest.warns(FutureWarning, match=f"'{old}' is now called '{new}'"):
        got = func(**kw, **{old: value})
    assert _same(got, expected)
    with pytest.raises(TypeError, match=f"both '{old}' and its new name '{new}'"):
        func(**kw, **{old: value, new: value})


@pytest.mark.parametrize("cls", [ConvRFM, RFM, DeepConvRFM, CNNBaseline])
def test_estimators_take_validation_fraction_and_still_accept_val_fraction(cls):
    with pytest.warns(
        FutureWarning,
        match=f"{cls.__name__}\\(\\): the argument 'val_fraction' "
        "is now called 'validation_fraction'",
    ):
        model = cls(val_fraction=0.3)
    params = model.get_params()
    assert params["validation_fraction"] == 0.3 and "val_fraction" not in params
    assert clone(model).validation_fraction == 0.3


def test_fitted_dual_coefficients_keep_their_old_names_for_a_release():
    Xb, y = bars_in_noise(30, sigma=1.0, height=6, width=6, dtype=torch.float64)
    model = ConvRFM(
        "laplace", patch_size=3, n_iter=1, random_state=0, device="cpu", progress=False
    ).fit(Xb, y)
    assert model.dual_coef_ is model.dual_coefs_[model.best_iter_]
    with pytest.warns(FutureWarning, match="'alpha_' is now called 'dual_coef_'"):
        assert model.alpha_ is model.dual_coef_
    with pytest.warns(FutureWarning, match="'alphas_' is now called 'dual_coefs_'"):
        assert model.alphas_ is model.dual_coefs_
    assert "alpha_" not in vars(model)


def test_the_metric_is_keyword_only_in_every_kernel_function_and_object():
    for func in (
        K.laplace,
        K.cnngp,
        K.cntk,
        K.laplace_agop,
        K.cnngp_agop,
        K.cntk_agop,
        K.Kernel.__call__,
        K.Kernel.agop,
        K.Laplace.__call__,
        K.CNNGP.agop,
        K.CNTK.__call__,
        K.CNTK.agop,
    ):
        M = inspect.signature(func).parameters["M"]
        assert M.kind is inspect.Parameter.KEYWORD_ONLY, func
    assert isinstance(K.get_kernel("laplace", 3), K.Kernel)
    assert not hasattr(K, "LaplaceOps") and not hasattr(K, "ArccosOps")


def test_renamed_arguments_leaves_other_keywords_and_positions_alone():
    @renamed_arguments(lam="ridge")
    def f(a, ridge=0.0, *, other=1):
        return a, ridge, other

    assert f(1, 2, other=3) == (1, 2, 3)
    with pytest.warns(FutureWarning, match=r"f\(\): the argument 'lam'"):
        assert f(1, lam=2) == (1, 2, 1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        f(1, lamb=2)
