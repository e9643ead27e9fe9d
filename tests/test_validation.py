"""agop.validation: the validators every public entry point calls once, each against the
inputs it must accept (numpy scalars, names in any case) and the clear error, naming the
argument and what was expected, that it gives for everything else."""

import os
import re

import numpy as np
import pytest
import torch

from agop.validation import (
    ArgumentTypeError,
    as_tensor,
    check_choice,
    check_dtype,
    check_images,
    check_int,
    check_int_pair,
    check_real,
    check_reals,
    check_result,
    check_seed,
    check_seeds,
    check_symmetric,
)


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


def test_check_seeds_takes_distinct_seeds_in_order_and_names_the_entry_at_fault():
    """One check for every sweep over seeds: each entry a seed, none repeated, enough."""
    assert check_seeds((3, np.int64(0), 7)) == [3, 0, 7]
    assert check_seeds(np.array([5, 2])) == [5, 2]
    assert check_seeds(s for s in (1, 2)) == [1, 2]
    assert check_seeds([4], "runs") == [4]
    with pytest.raises(ValueError, match=r"^seeds must be distinct .*got \[1, 2, 1\]$"):
        check_seeds([1, 2, 1])
    with pytest.raises(ValueError, match=r"^runs must hold at least 2 distinct seeds, got \[4\]"):
        check_seeds([4], "runs", at_least=2)
    with pytest.raises(ValueError, match=r"^seeds must hold at least one seed, got \[\]"):
        check_seeds([])
    with pytest.raises(ValueError, match=r"^seeds\[1\] must be a non-negative integer"):
        check_seeds([0, -1])
    with pytest.raises(ArgumentTypeError, match=r"^seeds\[0\] must be an integer"):
        check_seeds([1.0])
    for bad in (3, "12", {0: 1}, None):
        with pytest.raises(ArgumentTypeError, match="^seeds must be a sequence of seeds"):
            check_seeds(bad)
    with pytest.raises(ArgumentTypeError, match=r"^seeds must be a 1-d sequence.*\(2, 1\)"):
        check_seeds(np.zeros((2, 1), dtype=int))


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


def test_finite_checks_find_one_nonfinite_value_anywhere():
    """``check_finite`` and ``check_result`` scan a 64 MB matrix in blocks and still find one
    NaN or inf anywhere (that they hold no temporary of its size is measured by
    ``python -m agop_book.bench --only internals``)."""
    from agop.validation import check_finite, check_result

    K = torch.rand(4000, 4000)
    check_finite(K, "K")
    check_result(K, "K")
    for bad in (float("nan"), float("inf"), -float("inf")):
        for where in ((0, 0), (1234, 3999), (3999, 3999)):
            K[where] = bad
            with pytest.raises(ValueError, match="1 non-finite"):
                check_finite(K, "K")
            with pytest.raises(ValueError, match="1 of 16000000 values"):
                check_result(K, "K")
            K[where] = 0.5


def test_check_images_errors():
    with pytest.raises(ValueError, match=r"X must have shape \(n, c, H, W\)"):
        check_images(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="non-finite"):
        check_images(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="3 channels"):
        check_images(torch.zeros(1, 1, 2, 2), channels=3)


def test_as_tensor_converts_lists_straight_to_the_requested_dtype():
    """A nested list of Python floats (doubles) asked for as float64 keeps every digit: it is
    not rounded through float32 (torch's default dtype) on the way."""
    import torch

    from agop.validation import as_tensor

    x = as_tensor([[0.1, 1 / 3]], "x", dtype=torch.float64)
    assert x.dtype == torch.float64 and x.tolist() == [[0.1, 1 / 3]]
    assert as_tensor([[1, 2]], "x").dtype == torch.get_default_dtype()  # integers: float32


# Hostile inputs, round 4


def test_as_tensor_reads_nullable_frames_and_refuses_missing_values():
    """A data frame of pandas' nullable columns (``np.asarray`` of which is an object array)
    is read as the numbers it holds, in its columns' numpy dtype; a ``pd.NA`` (or NaN) in it
    is a ValueError naming the argument and saying it holds missing values."""
    pd = pytest.importorskip("pandas")
    from agop.validation import as_tensor

    frame = pd.DataFrame({"a": [0.5, 1.25], "b": [2, 3]}).astype({"a": "Float64", "b": "Int64"})
    x = as_tensor(frame, "A")
    assert x.dtype == torch.float64 and x.tolist() == [[0.5, 2.0], [1.25, 3.0]]
    assert as_tensor(frame["b"], "A").dtype == torch.get_default_dtype()  # integers: float32
    frame.iloc[1, 1] = pd.NA
    with pytest.raises(ValueError, match="^A contains 1 missing value"):
        as_tensor(frame, "A")
    with pytest.raises(ValueError, match="^A contains 1 missing value"):
        as_tensor(frame["b"], "A")


def test_memory_bytes_is_the_least_of_the_machines_the_processs_and_the_containers(
    monkeypatch, tmp_path
):
    """A container (cgroup) or ``ulimit -v`` smaller than the machine: the memory checks size
    against that, not the physical memory (a too-large request was an allocator's failure, or
    the container killed the process)."""
    import resource

    import agop.validation as V

    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    monkeypatch.setattr(V, "_CGROUP_LIMITS", (str(tmp_path / "none"),))
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY,) * 2)
    assert V._memory_bytes() == physical
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("max\n")  # cgroup v2 without a limit
    v1.write_text(f"{physical // 3}\n")
    monkeypatch.setattr(V, "_CGROUP_LIMITS", (str(v2), str(v1)))
    assert V._memory_bytes() == physical // 3
    monkeypatch.setattr(resource, "getrlimit", lambda which: (physical // 5, physical))
    assert V._memory_bytes() == physical // 5
    with pytest.raises(ValueError, match="^n: the images would need .* GiB, more than"):
        V._check_allocation(physical // 5 // 8 + 1, 8, "n", "the images")
    V._check_allocation(physical // 5 // 8, 8, "n", "the images")


# --------------------------------------------------------------------------------------------
# Hostile inputs, round 6
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "view",
    [lambda a: a[::-1], lambda a: a[:, ::-2], lambda a: a[::-1, ::-1].T],
    ids=["rows reversed", "columns reversed, step 2", "both reversed, transposed"],
)
def test_as_tensor_reads_a_numpy_view_with_negative_strides(view):
    """``x[::-1]`` of a numpy array (negative strides) failed in torch.from_numpy with its own
    message, naming nothing; it is read as the values it shows."""
    a = np.arange(24.0).reshape(4, 6)
    v = view(a)
    got = as_tensor(v, "A")
    assert got.tolist() == np.ascontiguousarray(v).tolist()
    got[0, 0] = -1.0  # a copy: the caller's array is untouched
    assert a.min() == 0.0
