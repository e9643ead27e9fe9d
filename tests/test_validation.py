"""Bad and edge-case input across the API: each test reproduces one defect class found by
hostile-input testing (the issue that hardened the package) and checks the clear error, or the
right answer, that replaced the silent wrong one."""

import gzip
import pickle
import re
import struct
import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from torch import nn

from agop import kernels as K
from agop.deep_rfm import DeepConvRFM
from agop.features import layer_correlations, patch_agop
from agop.linalg import correlation, psd_power
from agop.rfm import ConvRFM
from agop.runtime import default_device
from agop.solve import RidgeSweep, ridge, select_ridge
from agop.validation import (
    ArgumentTypeError,
    check_choice,
    check_dtype,
    check_images,
    check_int,
    check_int_pair,
    check_real,
    check_reals,
    check_result,
    check_seed,
    check_symmetric,
)
from agop_book.ch01_ansatz import verify_ansatz
from agop_book.ch02_theorem import check_theorem
from agop_book.data import DataFileError, load_dataset, read_split
from agop_book.data.readers import read_cifar_batch, read_idx, read_images, read_svhn_mat
from agop_book.nets import CNNBaseline
from agop_book.reference import brute_force_patch_agop

FAST = dict(device="cpu", progress=False, random_state=0)


def images(n=12, c=1, size=6, seed=0, dtype=torch.float64):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return (
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)).double().eval()
    )


# --------------------------------------------------------------------------------------------
# The validators themselves
# --------------------------------------------------------------------------------------------


def test_check_int_accepts_numpy_integers_and_rejects_bools_floats_and_bounds():
    for v in (3, np.int64(3), np.int32(3), np.uint8(3)):
        out = check_int(v, "k", minimum=1, odd=True)
        assert out == 3 and type(out) is int
    for bad in (True, np.bool_(True), 3.0, "3", None, np.float32(3)):
        with pytest.raises(ArgumentTypeError, match="k must be an integer"):
            check_int(bad, "k")
    with pytest.raises(ValueError, match="k must be a positive odd integer, got 4"):
        check_int(4, "k", minimum=1, odd=True)
    with pytest.raises(ValueError, match="n must be a non-negative integer, got -1"):
        check_int(-1, "n", minimum=0)
    with pytest.raises(ValueError, match="L must be a positive integer <= 3, got 4"):
        check_int(4, "L", minimum=1, maximum=3)
    # a type error is also a ValueError, so existing `except ValueError` still catches it
    assert issubclass(ArgumentTypeError, ValueError) and issubclass(ArgumentTypeError, TypeError)


def test_check_int_pair_accepts_numpy_integers_once_or_per_axis():
    """A size given once or as (height, width): numpy integers are integers (np.int64(3) was
    'numpy.int64' object is not iterable from deep inside); floats, bools, wrong lengths and
    sizes below the minimum name the argument (and the entry)."""
    for v, out in ((np.int64(3), (3, 3)), (3, (3, 3)), ((np.int32(2), 5), (2, 5)),
                   ([4, np.uint8(1)], (4, 1)), (np.array([2, 3]), (2, 3))):  # fmt: skip
        got = check_int_pair(v, "kernel_size")
        assert got == out and all(type(k) is int for k in got)
    for bad in ((3, 3, 3), (3,), "3", None, 3.0):
        with pytest.raises(ArgumentTypeError, match="kernel_size must be an integer"):
            check_int_pair(bad, "kernel_size")
    with pytest.raises(ArgumentTypeError, match=r"kernel_size\[1\] must be an integer, got 2.5"):
        check_int_pair((3, 2.5), "kernel_size")
    with pytest.raises(
        ArgumentTypeError,
        match=r"stride must be an integer or a pair of integers \(height, width\), got True",
    ):
        check_int_pair(True, "stride")
    with pytest.raises(ValueError, match="stride must be a positive integer, got 0"):
        check_int_pair(0, "stride")
    assert check_int_pair(0, "padding", minimum=0) == (0, 0)


def test_check_seed_takes_integers_below_two_to_the_63():
    """Seeds are integers in [0, 2**63): 2**64 raised 'Overflow when unpacking long long' from
    torch, and a float seed was truncated (2.7 -> 2, the same draws as seed 2)."""
    assert check_seed(np.uint64(7)) == 7 and type(check_seed(np.int64(7))) is int
    top = 2**63 - 1
    assert check_seed(top) == top
    torch.Generator().manual_seed(check_seed(top) + 7919)  # the offsets derived seeds add fit
    for bad in (2**63, 2**64, -1):
        with pytest.raises(
            ValueError, match=r"seed must be a non-negative integer <= \d+ \(below 2\*\*63\)"
        ):
            check_seed(bad)
    for bad in (2.7, np.float64(2.0), True, "1", None):
        with pytest.raises(ArgumentTypeError, match="seed must be an integer"):
            check_seed(bad)
    with pytest.raises(ValueError, match=r"seeds\[2\] must be"):
        check_seed(-3, "seeds[2]")


def test_check_images_refuses_an_empty_channel_row_or_column_axis():
    """Zero-channel images failed deep inside (max() of an empty tensor)."""
    for shape in ((2, 0, 6, 6), (2, 1, 0, 6), (2, 1, 6, 0)):
        message = f"X must have at least one channel, row and column, got shape {shape}"
        with pytest.raises(ValueError, match=re.escape(message)):
            check_images(torch.zeros(shape))
    assert check_images(torch.zeros(1, 1, 1, 1)).shape == (1, 1, 1, 1)


def test_check_real_rejects_nan_inf_bool_complex_and_applies_bounds():
    assert check_real(np.float32(0.5), "p") == 0.5 and type(check_real(np.int64(2), "p")) is float
    for bad in (True, "1", 1j, None, np.complex64(1)):
        with pytest.raises(ArgumentTypeError, match="p must be a real number"):
            check_real(bad, "p")
    for bad in (float("nan"), float("inf"), np.float64("-inf")):
        with pytest.raises(ValueError, match="p must be a finite number"):
            check_real(bad, "p")
    with pytest.raises(ValueError, match="p must be a positive number, got 0"):
        check_real(0.0, "p", minimum=0, strict_minimum=True)
    assert check_real(0.0, "p", minimum=0) == 0.0
    with pytest.raises(ValueError, match="p must be a non-negative number"):
        check_real(-1, "p", minimum=0)
    with pytest.raises(ValueError, match="p must be >= 2"):
        check_real(1, "p", minimum=2)
    with pytest.raises(ValueError, match="p must be <= 1"):
        check_real(1.5, "p", maximum=1)


def test_check_reals_names_the_bad_entry_and_suggests_a_list_for_a_scalar():
    assert check_reals(np.arange(3), "r") == [0.0, 1.0, 2.0]
    assert check_reals(torch.tensor([0.5]), "r") == [0.5]
    with pytest.raises(ArgumentTypeError, match=r"pass \[0.1\]"):
        check_reals(0.1, "ridges")
    with pytest.raises(ArgumentTypeError, match="ridges must be a non-empty sequence"):
        check_reals(np.array(0.1), "ridges")
    assert check_reals((r for r in (1, 2)), "r") == [1.0, 2.0]
    with pytest.raises(ValueError, match="empty"):
        check_reals([], "ridges")
    with pytest.raises(ValueError, match=r"ridges\[1\] must be a non-negative number"):
        check_reals([1.0, -1.0], "ridges", minimum=0)


def test_check_choice_is_case_insensitive_and_returns_the_canonical_name():
    assert check_choice("CNTK", "kernel", ("laplace", "cntk")) == "cntk"
    assert check_choice("Max_Eig", "normalize", ("max_eig", "fro", None)) == "max_eig"
    assert check_choice(None, "normalize", ("max_eig", None)) is None
    with pytest.raises(ValueError, match="kernel must be one of 'laplace', 'cntk'.*'rbf'"):
        check_choice("rbf", "kernel", ("laplace", "cntk"))
    with pytest.raises(ValueError, match="kernel must be one of"):
        check_choice(None, "kernel", ("laplace",))


def test_check_dtype_accepts_float_dtypes_names_and_numpy_types_only():
    assert check_dtype(torch.float64) is torch.float64
    assert check_dtype("Float32") is torch.float32 and check_dtype("torch.float64") is torch.float64
    assert (
        check_dtype(np.float64) is torch.float64
        and check_dtype(np.dtype("float32")) is torch.float32
    )
    assert check_dtype(None) is None
    with pytest.raises(ValueError, match="images would be truncated"):
        check_dtype(torch.int32)
    with pytest.raises(ValueError, match="dtype must be one of torch.float32, torch.float64"):
        check_dtype(torch.float16)
    for bad in ("float", "int8?", 3, "complex64"):
        if bad == "float":  # torch.float is float32: a valid name
            assert check_dtype(bad) is torch.float32
            continue
        with pytest.raises(ValueError, match="dtype must be"):
            check_dtype(bad)


def test_check_result_names_what_overflowed_and_the_inputs_scale():
    x = torch.tensor([1.0, float("inf"), float("nan")])
    with pytest.raises(
        ValueError,
        match=r"K\(X, X\) is not finite: 2 of 3 values.*"
        r"max \|X\| = 1e\+20.*Rescale",
    ):
        check_result(x, "K(X, X)", inputs={"X": torch.tensor([1e20])})
    ok = torch.ones(3)
    assert check_result(ok, "K") is ok


def test_check_symmetric_tolerates_round_off_and_rejects_clear_asymmetry():
    A = torch.randn(50, 30, dtype=torch.float32)
    check_symmetric(A @ A.T, "K")  # a product, not exactly symmetric in float32
    with pytest.raises(ValueError, match="K must be symmetric"):
        check_symmetric(torch.tensor([[2.0, 1.0], [0.0, 2.0]]), "K")


# --------------------------------------------------------------------------------------------
# Defect 1: silent wrong hyper-parameters (names compared case-insensitively; unused arguments)
# --------------------------------------------------------------------------------------------


def test_defect1_estimator_kernel_names_are_case_insensitive():
    X, y = images(), np.arange(12) % 2
    cntk = ConvRFM(kernel="CNTK", depth=2, patch_size=3, n_iter=0, **FAST).fit(X, y)
    assert cntk.kernel_.depth == 2
    lap = ConvRFM(kernel="Laplace", bandwidth=0.5, patch_size=3, n_iter=0, **FAST).fit(X, y)
    assert lap.kernel_.bandwidth == 0.5
    ref = ConvRFM(kernel="laplace", bandwidth=0.5, patch_size=3, n_iter=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(lap.decision_function(X), ref.decision_function(X))
    assert K.get_kernel("LAPLACE", patch_size=3) == K.Laplace(3)
    assert K.get_kernel("cntk", patch_size=3, kind="NNGP")(X).shape == (12, 12)


def test_defect1_every_parsed_name_is_case_insensitive():
    from agop.features import FilterSpace
    from agop.patches import pad
    from agop_book.nets import SimpleCNN

    x = images(2)
    torch.testing.assert_close(pad(x, (1, 1, 1, 1), "Circular"), pad(x, (1, 1, 1, 1), "circular"))
    a, b = (
        SimpleCNN(1, 2, 6, depth=1, activation="TANH", pool="Max", init="Kaiming", seed=0),
        SimpleCNN(1, 2, 6, depth=1, activation="tanh", pool="max", init="kaiming", seed=0),
    )
    torch.testing.assert_close(a(x.float()), b(x.float()), rtol=0, atol=0)
    space = FilterSpace(torch.randn(4, 9, dtype=torch.float64))
    B = space.reduce(torch.eye(4, dtype=torch.float64))
    assert space.similarity(B, "COSINE") == space.similarity(B, "cosine")
    Kt = K.laplace(x, None, 3)
    best, _, scores = select_ridge(
        Kt, torch.ones(2, dtype=x.dtype), Kt, torch.ones(2, dtype=x.dtype), [0.1, 1.0], metric="MSE"
    )
    assert (best, scores) == select_ridge(
        Kt, torch.ones(2, dtype=x.dtype), Kt, torch.ones(2, dtype=x.dtype), [0.1, 1.0], "mse"
    )[::2]
    assert default_device("CPU").type == "cpu"


def test_defect1_arguments_a_kernel_does_not_use_are_rejected():
    X, y = images(), np.arange(12) % 2
    with pytest.raises(ValueError, match="bandwidth does not apply to the 'cntk' kernel"):
        ConvRFM(kernel="cntk", bandwidth=0.5, patch_size=3, n_iter=0, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="depth does not apply to the 'laplace' kernel"):
        ConvRFM(kernel="laplace", depth=2, patch_size=3, n_iter=0, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="bandwidth does not apply to the 'cnngp' kernel"):
        K.get_kernel("cnngp", patch_size=3, bandwidth=2.0)


def test_defect1_kernel_object_with_conflicting_estimator_arguments_warns():
    X, y = images(), np.arange(12) % 2
    with pytest.warns(UserWarning, match="patch_size=5 is ignored.*Laplace has patch_size=3"):
        model = ConvRFM(kernel=K.Laplace(3), patch_size=5, n_iter=0, **FAST).fit(X, y)
    assert model.kernel_.patch_size == 3
    with pytest.warns(UserWarning, match="bandwidth=0.5 is ignored"):
        ConvRFM(kernel=K.Laplace(3), patch_size=3, bandwidth=0.5, n_iter=0, **FAST).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # agreeing arguments: no warning
        ConvRFM(
            kernel=K.Laplace(3, bandwidth=2.0), patch_size=3, bandwidth=2.0, n_iter=0, **FAST
        ).fit(X, y)


# --------------------------------------------------------------------------------------------
# Defect 2: a conv output outside autograd; torch.inference_mode()
# --------------------------------------------------------------------------------------------


class _Detached(nn.Module):
    """A frozen first block written with .detach() or torch.no_grad() inside forward."""

    def __init__(self, how):
        super().__init__()
        torch.manual_seed(0)
        self.how = how
        self.c1 = nn.Conv2d(1, 2, 3).double()
        self.c2 = nn.Conv2d(2, 2, 1).double()
        self.fc = nn.Linear(32, 2).double()

    def forward(self, x):
        if self.how == "detach":
            h = self.c1(x).detach()
        else:
            with torch.no_grad():
                h = self.c1(x)
        return self.fc(self.c2(h).flatten(1))


@pytest.mark.parametrize("how", ["detach", "no_grad"])
def test_defect2_a_conv_outside_autograd_is_an_error_naming_it(how):
    model = _Detached(how).eval()
    X = images()
    with pytest.raises(
        ValueError,
        match="layer 'c1': its output does not reach the model's output through autograd",
    ):
        patch_agop(model, X)
    # the layers after it are fine, and equal the brute-force reference
    A = patch_agop(model, X, layers=["c2"])["c2"]
    ref = brute_force_patch_agop(model, X, "c2")
    torch.testing.assert_close(A, ref.to(A.dtype))


def test_defect2_patch_agop_under_inference_mode_matches_the_plain_call():
    model, X = small_cnn(), images()
    plain = patch_agop(model, X)
    with torch.inference_mode():
        X_inf = images()
        inside = patch_agop(model, X_inf)
    for name in plain:
        torch.testing.assert_close(inside[name], plain[name], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(patch_agop(model, X)["0"], plain["0"], rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# Defect 3: numpy scalars (GridSearchCV over np.arange grids)
# --------------------------------------------------------------------------------------------


def test_defect3_numpy_scalars_are_accepted_everywhere_and_give_the_same_answer():
    X, y = images(), np.arange(12) % 2
    kw = dict(kernel="cntk", n_iter=1, **FAST)
    a = ConvRFM(patch_size=3, depth=2, power=0.5, **kw).fit(X, y)
    b = ConvRFM(patch_size=np.int64(3), depth=np.int32(2), power=np.float32(0.5), **kw).fit(X, y)
    torch.testing.assert_close(a.M_, b.M_, rtol=0, atol=0)
    torch.testing.assert_close(K.laplace(X, None, np.int64(3)), K.laplace(X, None, 3))
    torch.testing.assert_close(K.cntk(X, None, np.int32(3), np.int64(2)), K.cntk(X, None, 3, 2))
    model = small_cnn()
    s1 = patch_agop(model, X, sketch=2, chunk_size=5, max_memory=2**20)["0"]
    s2 = patch_agop(
        model, X, sketch=np.int64(2), chunk_size=np.int32(5), max_memory=np.int64(2**20)
    )["0"]
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    table = verify_ansatz(model, X, sketch=np.int64(2), null_draws=np.int64(0))
    assert len(table) == 1
    deep = DeepConvRFM(
        depth=np.int64(2),
        n_layers=np.int64(1),
        width=np.int64(4),
        patch_size=np.int64(3),
        n_iter=0,
        **FAST,
    ).fit(X, y)
    assert deep.n_layers_ == 1


def test_defect3_grid_search_over_numpy_arange():
    X, y = images(16), np.arange(16) % 2
    grid = GridSearchCV(
        ConvRFM(kernel="laplace", n_iter=0, **FAST), {"patch_size": np.arange(1, 5, 2)}, cv=2
    ).fit(X, y)
    assert grid.best_params_["patch_size"] in (1, 3)


# --------------------------------------------------------------------------------------------
# Defect 4: accepted nonsense
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(dtype=torch.int32), "dtype must be one of.*images would be truncated"),
        (dict(dtype="float8?"), "dtype must be a floating torch dtype"),
        (dict(ridges=0.1), r"ridges must be a non-empty sequence.*pass \[0.1\]"),
        (dict(ridges=[1e-3, float("nan")]), r"ridges\[1\] must be a finite number"),
        (dict(padding=True), "padding must be an integer, got True"),
        (dict(patch_size=4), "patch_size must be a positive odd integer"),
        (dict(n_iter=1.0), "n_iter must be an integer"),
        (dict(validation_fraction=1.0), "validation_fraction must lie in"),
        (dict(normalize="l2"), "normalize must be one of"),
        (dict(power=0), "power must be a positive number"),
        (dict(max_memory=0), "max_memory must be a positive integer"),
        (dict(agop_samples=True), "agop_samples must be an integer"),
    ],
)
def test_defect4_estimator_parameters_are_checked_before_fitting(params, match):
    X, y = images(), np.arange(12) % 2
    kw = dict(kernel="laplace", patch_size=3, n_iter=0, **FAST) | params
    with pytest.raises(ValueError, match=match):
        ConvRFM(**kw).fit(X, y)


def test_defect4_dtype_names_work_and_deep_rfm_checks_its_dtype():
    X, y = images(), np.arange(12) % 2
    model = ConvRFM(kernel="laplace", patch_size=3, n_iter=0, dtype="float32", **FAST).fit(X, y)
    assert model.M_.dtype == torch.float32 and model.X_fit_.dtype == torch.float32
    with pytest.raises(ValueError, match="dtype must be one of"):
        DeepConvRFM(depth=2, width=4, dtype=torch.int64, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="dtype must be one of"):
        CNNBaseline(depth=1, width=2, epochs=1, dtype=torch.int32, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        CNNBaseline(depth=1, width=2, epochs=1, lr=0, **FAST).fit(X, y)
    base = CNNBaseline(
        depth=np.int64(1),
        width=np.int64(2),
        epochs=np.int64(1),
        patch_size=np.int64(3),
        lr=np.float32(0.1),
        **FAST,
    ).fit(X, y)
    assert base.predict(X).shape == (12,)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(max_memory=0), "max_memory must be a positive integer"),
        (dict(max_memory=-5), "max_memory must be a positive integer"),
        (dict(chunk_size=True), "chunk_size must be an integer, got True"),
        (dict(chunk_size=0), "chunk_size must be a positive integer"),
        (dict(layers=0), "layers must be None, a layer name or module, or a list"),
        (dict(sketch=0), "sketch must be a positive integer"),
        (dict(sketch=2.0), "sketch must be an integer"),
        (dict(seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_defect4_patch_agop_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        patch_agop(small_cnn(), images(), **kw)


def test_defect4_kernel_arguments():
    X = images()
    with pytest.raises(ValueError, match="padding must be an integer, got True"):
        K.laplace(X, None, 3, padding=True)
    with pytest.raises(ValueError, match="bandwidth must be a finite number"):
        K.laplace(X, None, 3, bandwidth=float("nan"))
    with pytest.raises(ValueError, match="bandwidth must be a positive number"):
        K.laplace(X, None, 3, bandwidth=0)
    with pytest.raises(ValueError, match="depth must be an integer"):
        K.cntk(X, None, 3, 2.0)
    assert K.cntk(X, None, 3, 1, kind="NTK").shape == (12, 12)


# --------------------------------------------------------------------------------------------
# Defect 5: silent NaN
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda X: K.cntk(X, None, 3, 2),
        lambda X: K.cnngp(X, None, 3),
        lambda X: K.laplace(X, None, 3),
        lambda X: K.cntk_agop(X, X, torch.ones(len(X)), 3, 1),
        lambda X: K.cnngp_agop(X, X, torch.ones(len(X)), 3),
        lambda X: K.laplace_agop(X, X, torch.ones(len(X)), 3),
    ],
    ids=["cntk", "cnngp", "laplace", "cntk_agop", "cnngp_agop", "laplace_agop"],
)
def test_defect5_kernels_near_the_float_range_raise_instead_of_returning_nan(fn):
    X = images(6, dtype=torch.float32) * 1e20
    X[0, 0, 0, 0] = 1e20
    with pytest.raises(
        ValueError,
        match=r"is not finite: .*overflow in torch.float32.*"
        r"max \|X\| = 1e\+20.*Rescale X and Z",
    ):
        fn(X)
    fn(X.double())  # float64 holds it: no error, and
    assert bool(torch.isfinite(fn(X.double())).all())


def test_defect5_correlation_is_scale_free_over_the_whole_float_range():
    g = torch.Generator().manual_seed(0)
    A, B = (
        torch.randn(6, 6, generator=g, dtype=torch.float64),
        torch.randn(6, 6, generator=g, dtype=torch.float64),
    )
    for kind in ("pearson", "cosine"):
        ref = correlation(A, B, kind)
        for s in (1e-300, 1e-150, 1e150, 1e300):
            assert correlation(s * A, B / s, kind) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="constant matrix"):
        correlation(torch.full((6, 6), 0.1, dtype=torch.float64), A)
    with pytest.raises(ValueError, match="B is zero"):
        correlation(A, torch.zeros(6, 6), "cosine")
    assert correlation(torch.ones(3, 3), torch.ones(3, 3), "cosine") == pytest.approx(1.0)


def test_defect5_solvers_never_return_nan():
    with pytest.raises(ValueError, match="K \\+ ridge\\*I is zero"):
        RidgeSweep(torch.zeros(3, 3)).solve(torch.ones(3), 0)
    assert torch.equal(
        RidgeSweep(torch.zeros(3, 3)).solve(torch.ones(3), 2.0), torch.full((3,), 0.5)
    )
    with pytest.raises(ValueError, match="K must be symmetric"):
        ridge(torch.tensor([[2.0, 1.0], [0.0, 2.0]]), torch.ones(2), 0.1)
    with pytest.raises(ValueError, match="K must be symmetric"):
        RidgeSweep(torch.tensor([[2.0, 1.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="ridge must be a finite number"):
        ridge(torch.eye(2), torch.ones(2), float("nan"))
    tiny = torch.eye(3, dtype=torch.float64) * 1e-310  # subnormal: 1/K overflows
    with pytest.raises(ValueError, match=r"dual_coef = \(K \+ ridge I\)\^\{-1\} Y is not finite"):
        ridge(tiny, torch.ones(3, dtype=torch.float64), 0.0, jitter=False)
    with pytest.raises(ValueError, match="is not finite"):
        select_ridge(
            tiny,
            torch.ones(3, dtype=torch.float64),
            tiny,
            torch.ones(3, dtype=torch.float64),
            [0.0],
        )


def test_defect5_psd_power_checks_power():
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="power must be a finite number"):
            psd_power(torch.eye(3), bad)
    with pytest.raises(ValueError, match="power must be a real number"):
        psd_power(torch.eye(3), "1/2")


# --------------------------------------------------------------------------------------------
# Defect 6: low-precision AGOPs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_defect6_half_precision_matrices_in_psd_power_and_layer_correlations(dtype):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(9, 9, generator=g, dtype=torch.float64)
    A = B @ B.T
    for power in (0.5, 2.0, -1.0):
        out = psd_power(A.to(dtype), power)
        assert out.dtype == dtype
        ref = psd_power(A.to(dtype).double(), power)  # the same rounded matrix, in float64
        torch.testing.assert_close(out.double(), ref, rtol=3e-2, atol=3e-2 * float(ref.abs().max()))
    model = small_cnn()
    corr = layer_correlations(model.to(dtype), {"0": A.to(dtype)}, power=0.5)["0"]
    ref = layer_correlations(model.double(), {"0": A.to(dtype).double()}, power=0.5)["0"]
    assert corr == pytest.approx(ref, abs=2e-2)


# --------------------------------------------------------------------------------------------
# Defect 8: data files
# --------------------------------------------------------------------------------------------


def _idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def test_defect8_corrupt_and_truncated_gzip_idx_name_the_file(tmp_path):
    data = _idx(tmp_path, np.zeros((4, 5, 5), dtype=np.uint8))
    bad = tmp_path / "bad-idx3-ubyte.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match=f"{bad}: cannot read it as an IDX file.*BadGzipFile"):
        read_idx(bad)
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(gzip.compress(data)[:30])
    with pytest.raises(DataFileError, match=f"{cut}: cannot read it as an IDX file.*EOFError"):
        read_idx(cut)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.gz")


@pytest.mark.parametrize("cut", [2, 4, 10, 30])
def test_short_uncompressed_idx_raises_data_file_error(tmp_path, cut):
    """A plain IDX file cut short (in the magic number, the header or the body) is a
    DataFileError naming the file, like a truncated .gz, not a bare ValueError."""
    whole = _idx(tmp_path, np.zeros((4, 5, 5), dtype=np.uint8))
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(whole[:cut])
    with pytest.raises(DataFileError, match=str(path)):
        read_idx(path)


def test_defect8_cifar_batches_corrupt_truncated_or_out_of_range(tmp_path):
    good = {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [0, 1]}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(good)[:40])
    with pytest.raises(DataFileError, match=f"{path}: cannot read it as a CIFAR python batch"):
        read_cifar_batch(path)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataFileError, match=str(path)):
        read_cifar_batch(path)
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 100), dtype=np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataFileError, match=f"{path}: cannot read it.*reshape"):
        read_cifar_batch(path)
    wide = np.full((2, 3072), 300, dtype=np.int64)  # would wrap to 44 as uint8
    path.write_bytes(pickle.dumps({"data": wide, "labels": [0, 1]}))
    with pytest.raises(DataFileError, match=r"integers in 0..255, found values in \[300, 300\]"):
        read_cifar_batch(path)
    path.write_bytes(pickle.dumps({"data": good["data"].astype(np.int64), "labels": [0, 1]}))
    X, y = read_cifar_batch(path)  # in-range integers of another dtype are fine
    assert X.dtype == np.uint8 and X.shape == (2, 3, 32, 32) and y.tolist() == [0, 1]


def test_defect8_svhn_mat_corrupt_and_out_of_range(tmp_path):
    import scipy.io

    path = tmp_path / "train_32x32.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DataFileError, match=f"{path}: cannot read it as an SVHN .mat file"):
        read_svhn_mat(path)
    X = np.full((32, 32, 3, 2), 256.0)
    scipy.io.savemat(path, {"X": X, "y": np.array([[1], [2]])})
    with pytest.raises(DataFileError, match="integers in 0..255"):
        read_svhn_mat(path)


def test_defect8_unreadable_image_names_the_file(tmp_path):
    path = tmp_path / "00000.ppm"
    path.write_bytes(b"P6\n32 32\n255\n" + bytes(100))  # truncated pixel data
    with pytest.raises(DataFileError, match=f"{path}: cannot read it as an image"):
        read_images([str(path)], 8)


def test_defect8_labels_out_of_range_fail_on_loading(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for part, n in (("train", 6), ("t10k", 4)):
        (raw / f"{part}-images-idx3-ubyte").write_bytes(_idx(raw, np.zeros((n, 28, 28))))
        (raw / f"{part}-labels-idx1-ubyte").write_bytes(
            _idx(raw, np.array([0, 1, 12, 3, 4, 5][:n]))
        )
    for call in (
        lambda: load_dataset("mnist", root=tmp_path, device="cpu"),
        lambda: read_split("mnist", root=tmp_path),
    ):
        with pytest.raises(
            DataFileError,
            match=r"MNIST train labels under .* must lie in 0..9; "
            r"1 do not \(e.g. \[12\]\)",
        ):
            call()


# --------------------------------------------------------------------------------------------
# Defect 9: the benchmark command line
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--json", "/missing/dir/x.json"], "the directory /missing/dir does not exist"),
        (["--only"], "expected at least one argument"),
        (["--device", "gpu"], "--device gpu: device must be"),
        (["--only", "nope"], "unknown benchmark"),
    ],
)
def test_defect9_bench_usage_errors_come_before_any_benchmark_runs(
    argv, match, capsys, monkeypatch
):
    import agop_book.bench as bench
    from agop_book.bench.__main__ import main

    ran = []
    monkeypatch.setattr(bench, "run_benchmarks", lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and not ran
    assert match in capsys.readouterr().err


def test_defect9_bench_cuda_without_cuda_is_a_usage_error(capsys, monkeypatch):
    from agop_book.bench.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda", "--only", "kernels"])
    assert exit_info.value.code == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_defect9_bench_json_to_a_directory_or_unwritable_file(tmp_path, capsys):
    from agop_book.bench.__main__ import main

    with pytest.raises(SystemExit):
        main(["--json", str(tmp_path)])
    assert "is a directory" in capsys.readouterr().err


def test_device_names_are_case_insensitive_and_bad_ones_name_the_argument():
    assert default_device("CPU") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be None, 'cpu', 'cuda'"):
        default_device("gpu")


# --------------------------------------------------------------------------------------------
# Defect 10: misleading errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale, eta", [(255.0, 0.02), (1.0, 1e6)])
def test_defect10_saturated_theorem_check_says_why(scale, eta):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(16, 1, 6, 6, generator=g, dtype=torch.float64) * scale
    y = torch.randn(16, generator=g, dtype=torch.float64)
    with pytest.raises(
        ValueError,
        match=r"pre-activations W_1 x\[j\] reach .*tanh' is 0.*"
        r"Scale X to \[0, 1\] or lower eta",
    ):
        check_theorem(X, y, eta=eta)
    res = check_theorem(X, y, eta=eta, on_data=False)  # at x = 0 the theorem still holds
    assert res.at_zero["pearson"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "fn",
    [
        lambda X: K.laplace(X, None, 3),
        lambda X: patch_agop(small_cnn(), X),
        lambda X: ConvRFM(patch_size=3, n_iter=0, **FAST).fit(X, np.arange(len(X)) % 2),
    ],
    ids=["laplace", "patch_agop", "ConvRFM"],
)
def test_defect10_complex_images_are_rejected(fn):
    X = images()
    with pytest.raises(TypeError, match="X must be real, got a torch.complex128 tensor"):
        fn(torch.complex(X, X))
    with pytest.raises(TypeError, match="X must be real"):
        fn(torch.complex(X, X).numpy())


def test_finite_checks_hold_no_temporary_of_the_tensors_size():
    """``check_finite`` and ``check_result`` scan a 64 MB matrix without a temporary of its
    size (``torch.isfinite`` makes several), and still find one NaN or inf anywhere."""
    from agop.validation import check_finite, check_result
    from agop_book.bench import _PeakRSS, _reset_peak_rss

    if not _reset_peak_rss():
        pytest.skip("needs Linux's resettable peak resident memory")
    K = torch.rand(4000, 4000)
    with _PeakRSS() as rss:
        check_finite(K, "K")
        check_result(K, "K")
    assert rss.peak - rss.base < 0.25 * K.numel() * K.element_size()
    for bad in (float("nan"), float("inf"), -float("inf")):
        for where in ((0, 0), (1234, 3999), (3999, 3999)):
            K[where] = bad
            with pytest.raises(ValueError, match="1 non-finite"):
                check_finite(K, "K")
            with pytest.raises(ValueError, match="1 of 16000000 values"):
                check_result(K, "K")
            K[where] = 0.5
