"""Property-based tests (Hypothesis) over the validators and the kernels.

Random shapes, dtypes, input scales, metrics and seeds; for every draw: each result is finite or
a clear error, ``K(X, X)`` is exactly symmetric and ``K(X, Z) = K(Z, X)^T``, the Cauchy-Schwarz
bound ``K(x, z)^2 <= K(x, x) K(z, z)`` of a PSD kernel holds, the patch-AGOP is symmetric PSD,
and seeded CPU runs are bit-identical. Examples are bounded so the file runs in seconds.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from agop import kernels as K
from agop.features import patch_agop
from agop.rfm import ConvRFM
from agop.validation import (
    FLOAT_DTYPES,
    ArgumentTypeError,
    check_choice,
    check_dtype,
    check_int,
    check_real,
)

FAST = settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
DTYPES = st.sampled_from([torch.float32, torch.float64])

# --------------------------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------------------------

INT_TYPES = st.sampled_from([int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16])


@FAST
@given(value=st.integers(-100, 100), kind=INT_TYPES, minimum=st.integers(-5, 5))
def test_check_int_accepts_every_integer_type_and_applies_the_bound(value, kind, minimum):
    if kind in (np.uint8, np.uint16) and value < 0:
        value = -value
    x = kind(value)
    if value < minimum:
        with pytest.raises(ValueError, match="k must be"):
            check_int(x, "k", minimum=minimum)
    else:
        out = check_int(x, "k", minimum=minimum)
        assert out == value and type(out) is int


@FAST
@given(
    x=st.one_of(
        st.booleans(),
        st.floats(),
        st.text(max_size=3),
        st.none(),
        st.complex_numbers(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_check_int_rejects_everything_that_is_not_an_integer(x):
    with pytest.raises(ArgumentTypeError, match="k must be an integer"):
        check_int(x, "k")


@FAST
@given(
    x=st.floats(allow_nan=True, allow_infinity=True),
    kind=st.sampled_from([float, np.float16, np.float32, np.float64]),
)
def test_check_real_returns_finite_floats_and_names_the_argument_otherwise(x, kind):
    with np.errstate(over="ignore"):
        value = kind(x)
    if np.isfinite(value):
        out = check_real(value, "eta")
        assert out == float(value) and type(out) is float
    else:
        with pytest.raises(ValueError, match="eta must be a finite number"):
            check_real(value, "eta")


@FAST
@given(
    choice=st.sampled_from(["laplace", "cnngp", "cntk", "max_eig"]),
    flips=st.lists(st.booleans(), min_size=7, max_size=7),
)
def test_check_choice_ignores_case(choice, flips):
    spelled = "".join(c.upper() if f else c for c, f in zip(choice, flips, strict=False))
    assert check_choice(spelled, "name", ("laplace", "cnngp", "cntk", "max_eig")) == choice


ALL_DTYPES = [
    getattr(torch, n)
    for n in (
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "int8",
        "int32",
        "int64",
        "uint8",
        "bool",
        "complex64",
    )
]


@FAST
@given(dtype=st.sampled_from(ALL_DTYPES), as_name=st.booleans())
def test_check_dtype_only_lets_float32_and_float64_through(dtype, as_name):
    arg = str(dtype).upper() if as_name else dtype
    if dtype in FLOAT_DTYPES:
        assert check_dtype(arg) is dtype
    else:
        with pytest.raises(ValueError, match="dtype must be one of torch.float32, torch.float64"):
            check_dtype(arg)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@st.composite
def kernel_problems(draw):
    """A kernel, images X (n) and Z (m) of one shape, a metric M or None, dtype and scale."""
    name = draw(st.sampled_from(["laplace", "cnngp", "cntk", "cntk-nngp"]))
    dtype = draw(DTYPES)
    k = draw(st.sampled_from([1, 3]))
    depth = draw(st.integers(1, 2)) if name.startswith("cntk") else 1
    c = draw(st.integers(1, 2))
    size = draw(st.integers(depth * (k - 1) + 1, depth * (k - 1) + 3))
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    # pixel scale 10^e: from well inside to well outside the documented range
    e = draw(st.integers(-12, 22) if dtype == torch.float32 else st.integers(-60, 80))
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, c, size, size, generator=g, dtype=torch.float64)
    Z = torch.randn(m, c, size, size, generator=g, dtype=torch.float64)
    if draw(st.booleans()):  # a near-duplicate: small angles, where rounding is snapped
        Z[0] = X[0] + 10.0 ** -draw(st.integers(1, 8)) * torch.randn(
            X[0].shape, generator=g, dtype=torch.float64
        )
    if draw(st.booleans()):  # a zero image: the arc-cosine kernels' edge case
        X[0] = 0
    q = c * k * k
    M = None
    if draw(st.booleans()):
        B = torch.randn(q, draw(st.integers(1, q)), generator=g, dtype=torch.float64)
        M = B @ B.T / q
    s = 10.0**e
    return name, dtype, k, depth, (X * s).to(dtype), (Z * s).to(dtype), M, s


def _kernel(name, k, depth, M, bandwidth):
    if name == "laplace":
        return K.Laplace(k, bandwidth=bandwidth, device="cpu")
    if name == "cnngp":
        return K.CNNGP(k, device="cpu")
    return K.CNTK(k, depth, kind="nngp" if name == "cntk-nngp" else "ntk", device="cpu")


def _finite_or_clear_error(fn):
    """``fn()`` (a tensor or a tuple of them) if finite; ``None`` if it raises the overflow
    error. Anything else (a NaN returned, another error) fails the test."""
    try:
        out = fn()
    except ValueError as err:
        assert re.search(
            r"is not finite: \d+ of \d+ values are NaN or inf, an overflow in "
            r"torch.float(32|64).*Rescale X and Z",
            str(err),
        ), str(err)
        return None
    for t in out if isinstance(out, tuple) else (out,):
        assert bool(torch.isfinite(t).all())
    return out


@FAST
@given(problem=kernel_problems())
@example(
    problem=(
        "cnngp",
        torch.float32,
        1,
        1,
        torch.tensor([[[[8.0328e-11]]]]),
        torch.tensor([[[[1.7483e-11]]]]),
        None,
        1e-10,
    )
)  # found once by Hypothesis
def test_kernels_are_finite_symmetric_and_obey_cauchy_schwarz(problem):
    name, dtype, k, depth, X, Z, M, s = problem
    kern = _kernel(name, k, depth, M, bandwidth=10.0 * s)
    KXX = _finite_or_clear_error(lambda: kern(X, None, M=M))
    KXZ = _finite_or_clear_error(lambda: kern(X, Z, M=M))
    KZX = _finite_or_clear_error(lambda: kern(Z, X, M=M))
    KZZ = _finite_or_clear_error(lambda: kern(Z, None, M=M))
    finite = all(t is not None for t in (KXX, KXZ, KZX, KZZ))
    event(f"{dtype}, scale 1e{round(np.log10(s)):+d}: {'finite' if finite else 'overflow error'}")
    assume(finite)
    assert torch.equal(KXX, KXX.T)
    eps = torch.finfo(dtype).eps
    scale = max(float(KXX.abs().max()), float(KZZ.abs().max()), torch.finfo(dtype).tiny)
    torch.testing.assert_close(KXZ, KZX.T, rtol=64 * eps, atol=64 * eps * scale)
    # the bound in float64: a float32 product of two diagonals near 1e-21 is subnormal
    bound = torch.outer(KXX.diagonal().double(), KZZ.diagonal().double())
    assert bool((KXZ.double() ** 2 <= bound * (1 + 256 * eps) + (256 * eps * scale) ** 2).all())
    if name == "laplace":  # K(x, x) = 1 exactly and 0 < K <= 1
        assert torch.equal(KXX.diagonal(), torch.ones(len(X), dtype=dtype))
        assert bool((KXZ >= 0).all() and (KXZ <= 1).all())
    else:
        assert bool((KXX.diagonal() >= 0).all())


@FAST
@given(problem=kernel_problems(), columns=st.integers(1, 3))
def test_patch_agops_are_symmetric_psd_or_a_clear_error(problem, columns):
    name, dtype, k, depth, X, Z, M, s = problem
    kern = _kernel(name, k, depth, M, bandwidth=10.0 * s)
    g = torch.Generator().manual_seed(len(X) * 7 + columns)
    alpha = torch.randn(len(Z), columns, generator=g, dtype=dtype)
    A = _finite_or_clear_error(lambda: kern.agop(X, Z, alpha, M=M))
    assume(A is not None)
    assert torch.equal(A, A.T)
    top = float(A.abs().max())
    eig = torch.linalg.eigvalsh(A.double())
    assert float(eig[0]) >= -64 * torch.finfo(dtype).eps * A.shape[0] * top


@FAST
@given(problem=kernel_problems())
def test_seeded_cpu_kernel_runs_are_bit_identical(problem):
    name, dtype, k, depth, X, Z, M, s = problem
    kern = _kernel(name, k, depth, M, bandwidth=10.0 * s)
    alpha = torch.ones(len(Z), 2, dtype=dtype)
    first = _finite_or_clear_error(lambda: (kern(X, Z, M=M), kern.agop(X, Z, alpha, M=M)))
    assume(first is not None)
    second = (kern(X.clone(), Z.clone(), M=M), kern.agop(X.clone(), Z.clone(), alpha, M=M))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


@FAST
@given(
    seed=st.integers(0, 2**16),
    sketch=st.one_of(st.none(), st.integers(1, 3)),
    chunk=st.integers(1, 5),
    dtype=DTYPES,
)
def test_seeded_patch_agop_and_convrfm_are_bit_identical(seed, sketch, chunk, dtype):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(5, 1, 6, 6, generator=g, dtype=dtype)
    torch.manual_seed(seed)
    net = (
        torch.nn.Sequential(
            torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(32, 2)
        )
        .to(dtype)
        .eval()
    )
    runs = [
        patch_agop(net, X, sketch=sketch, seed=seed, chunk_size=chunk, device="cpu")["0"]
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0], runs[0].T)
    assert float(torch.linalg.eigvalsh(runs[0].double())[0]) >= -1e-5 * float(runs[0].abs().max())
    y = np.arange(5) % 2
    fits = [
        ConvRFM(
            "laplace", patch_size=3, n_iter=1, random_state=seed, device="cpu", progress=False
        ).fit(X, y)
        for _ in range(2)
    ]
    assert torch.equal(fits[0].M_, fits[1].M_)
    assert np.array_equal(fits[0].decision_function(X), fits[1].decision_function(X))


# --------------------------------------------------------------------------------------------
# The numeric range stated in the API appendix
# --------------------------------------------------------------------------------------------


def _documented_ranges() -> dict[tuple[str, str], tuple[float, float]]:
    """``{(kernel, dtype): (low, high)}`` from the table in book/91_api.md."""
    text = (Path(__file__).parents[1] / "book" / "91_api.md").read_text()
    rows = re.findall(
        r"^\| `(\w+)` \| (float32|float64) \| `(1e-?\d+)` \| `(1e-?\d+)` \|", text, flags=re.M
    )
    assert len(rows) >= 6, "the Errors and limits table of book/91_api.md is missing"
    return {(kernel, dtype): (float(lo), float(hi)) for kernel, dtype, lo, hi in rows}


def _reference(name, X, Z, alpha, s):
    """The kernel and AGOP of ``s X``, ``s Z`` from float64 at scale 1: the arc-cosine kernels
    are homogeneous of degree 2 (their AGOPs too); Laplace with bandwidth ``10 s`` at scale ``s``
    is Laplace with bandwidth 10 at scale 1, with AGOP divided by ``s^2``."""
    if name == "laplace":
        return K.laplace(X, Z, 3, bandwidth=10.0), K.laplace_agop(
            X, Z, alpha, 3, bandwidth=10.0
        ) / s**2
    if name == "cnngp":
        return K.cnngp(X, Z, 3) * s**2, K.cnngp_agop(X, Z, alpha, 3) * s**2
    return K.cntk(X, Z, 3, 3) * s**2, K.cntk_agop(X, Z, alpha, 3, 3) * s**2


def _evaluate(name, X, Z, alpha, s):
    if name == "laplace":
        return (
            K.laplace(X, Z, 3, bandwidth=10.0 * s),
            K.laplace_agop(X, Z, alpha, 3, bandwidth=10.0 * s),
        )
    if name == "cnngp":
        return K.cnngp(X, Z, 3), K.cnngp_agop(X, Z, alpha, 3)
    return K.cntk(X, Z, 3, 3), K.cntk_agop(X, Z, alpha, 3, 3)


@pytest.mark.parametrize("name", ["laplace", "cnngp", "cntk"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_documented_range_is_accurate_and_beyond_it_overflow_is_an_error(name, dtype):
    low, high = _documented_ranges()[(name, dtype)]
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(6, 2, 7, 7, generator=g, dtype=torch.float64)
    Z = torch.rand(5, 2, 7, 7, generator=g, dtype=torch.float64)
    alpha = torch.randn(5, 2, generator=g, dtype=torch.float64)
    tol = 1e-3 if dt == torch.float32 else 1e-9
    for s in (low, 1.0, high):
        K_ref, A_ref = _reference(name, X, Z, alpha, s)
        K_s, A_s = _evaluate(name, (X * s).to(dt), (Z * s).to(dt), alpha.to(dt), s)
        assert float((K_s.double() - K_ref).abs().max() / K_ref.abs().max()) < tol, s
        assert float((A_s.double() - A_ref).abs().max() / A_ref.abs().max()) < 10 * tol, s
    # far above the range the inputs' squares overflow: a clear error, never NaN
    big = 1e30 if dt == torch.float32 else 1e200
    if name == "laplace":
        # its values stay in [0, 1] at any scale: it is computed on images rescaled by a power
        # of 2 (round 6), so far above the range it is still right, not refused
        K_big = K.laplace((X * big).to(dt), (Z * big).to(dt), 3, bandwidth=10.0 * big)
        K_ref = K.laplace(X, Z, 3, bandwidth=10.0)
        assert float((K_big.double() - K_ref).abs().max()) < tol
        return
    with pytest.raises(ValueError, match="is not finite"):
        _evaluate(name, (X * big).to(dt), (Z * big).to(dt), alpha.to(dt), big)
