"""Input checks shared by every public entry point: clear errors that name the argument.

One function per kind of argument, so every entry point answers bad input the same way:

* :func:`check_int`, :func:`check_real` -- Python or numpy scalars (``np.int64`` from an
  ``np.arange`` grid is an integer; ``True`` is not), within bounds;
* :func:`check_int_pair` -- a size given once or as ``(height, width)``, each as
  :func:`check_int`;
* :func:`check_seed` -- a seed: an integer in ``[0, 2**63)``;
* :func:`check_choice` -- a name among a few, compared case-insensitively;
* :func:`check_dtype` -- a floating torch dtype (or its name);
* :func:`as_tensor`, :func:`check_images`, :func:`check_square`, :func:`check_symmetric`,
  :func:`check_psd` -- real, finite arrays of the expected shape;
* :func:`check_result` -- a computed result is finite, else an error saying what overflowed
  and how to rescale.

A value of the wrong type raises :class:`ArgumentTypeError` (a ``TypeError`` that is also a
``ValueError``, like scikit-learn's ``InvalidParameterError``); a value out of range raises
``ValueError``. Both name the argument and say what was expected.
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import torch

try:
    import resource  # POSIX: the process's address-space limit
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (both a ``TypeError`` and a ``ValueError``).

    Examples:
        >>> try:
        ...     check_int(3.0, "patch_size")
        ... except TypeError as err:
        ...     print(isinstance(err, ValueError), err)
        True patch_size must be an integer, got 3.0 (float)
    """


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    odd: bool = False,
) -> int:
    """``value`` as a Python ``int``: ``int`` or numpy integer (never ``bool``), in
    ``[minimum, maximum]``, odd if ``odd``.

    Examples:
        >>> import numpy as np
        >>> check_int(np.int64(3), "patch_size", minimum=1, odd=True)
        3
        >>> check_int(True, "layers")
        Traceback (most recent call last):
        ...
        agop.validation.ArgumentTypeError: layers must be an integer, got True (bool)
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ArgumentTypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})"
        )
    value = int(value)
    if (
        (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
        or (odd and value % 2 == 0)
    ):
        kind = (
            {0: "a non-negative", 1: "a positive"}.get(minimum, "an")
            if minimum is not None
            else "an"
        )
        low = "" if minimum in (None, 0, 1) else f" >= {minimum}"
        high = "" if maximum is None else f" <= {maximum}"
        both = " and" if low and high else ""
        raise ValueError(
            f"{name} must be {kind}{' odd' if odd else ''} integer{low}{both}{high}, got {value}"
        )
    return value


def check_int_pair(value: Any, name: str, *, minimum: int | None = 1) -> tuple[int, int]:
    """``value`` as a pair of Python ``int``: one integer for both axes or a pair
    ``(height, width)``, each an ``int`` or numpy integer (never ``bool``) ``>= minimum``.

    Examples:
        >>> import numpy as np
        >>> check_int_pair(np.int64(3), "kernel_size"), check_int_pair((np.int32(2), 5), "stride")
        ((3, 3), (2, 5))
        >>> check_int_pair((3, 3, 3), "kernel_size")
        Traceback (most recent call last):
        ...
        agop.validation.ArgumentTypeError: kernel_size must be an integer or a pair of integers (height, width), got (3, 3, 3)
        >>> check_int_pair(0, "kernel_size")
        Traceback (most recent call last):
        ...
        ValueError: kernel_size must be a positive integer, got 0
    """
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    ):
        one = check_int(value, name, minimum=minimum)
        return one, one
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ArgumentTypeError(
            f"{name} must be an integer or a pair of integers (height, width), got {value!r}"
        )
    return (
        check_int(value[0], f"{name}[0]", minimum=minimum),
        check_int(value[1], f"{name}[1]", minimum=minimum),
    )


#: seeds are integers below this bound (torch's generators hold 64 bits; the bound leaves room
#: for the offsets some functions add to derive further seeds)
SEED_BOUND = 2**63


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` as a seed: a Python ``int`` in ``[0, 2**63)`` (an ``int`` or numpy integer,
    never ``bool`` or a float, which would be truncated). Larger seeds are refused rather than
    reduced: two different seeds then never give the same draws.

    Examples:
        >>> import numpy as np
        >>> check_seed(np.uint64(7))
        7
        >>> check_seed(2**64)
        Traceback (most recent call last):
        ...
        ValueError: seed must be a non-negative integer <= 9223372036854775807 (below 2**63), got 18446744073709551616
    """
    try:
        return check_int(value, name, minimum=0, maximum=SEED_BOUND - 1)
    except ArgumentTypeError:
        raise
    except ValueError as err:
        raise ValueError(
            str(err).replace(f" <= {SEED_BOUND - 1},", f" <= {SEED_BOUND - 1} (below 2**63),")
        ) from None


def check_seeds(values: Any, name: str = "seeds", *, at_least: int = 1) -> list[int]:
    """``values`` as a list of at least ``at_least`` distinct seeds, each as :func:`check_seed`.

    A repeated seed repeats a run: it would shrink the spread over seeds and collide as a key,
    so it is refused.

    Examples:
        >>> check_seeds((0, np.int64(3)))
        [0, 3]
        >>> check_seeds([1, 2, 1])
        Traceback (most recent call last):
        ...
        ValueError: seeds must be distinct (a repeated seed repeats a run and shrinks the spread over seeds), got [1, 2, 1]
    """
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ArgumentTypeError(f"{name} must be a sequence of seeds, got {values!r}")
    if isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim != 1:
        raise ArgumentTypeError(
            f"{name} must be a 1-d sequence of seeds, got shape {tuple(values.shape)}"
        )
    values = values.tolist() if isinstance(values, (np.ndarray, torch.Tensor)) else list(values)
    seeds = [check_seed(v, f"{name}[{i}]") for i, v in enumerate(values)]
    if len(seeds) < at_least:
        need = "one seed" if at_least == 1 else f"{at_least} distinct seeds"
        raise ValueError(f"{name} must hold at least {need}, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(
            f"{name} must be distinct (a repeated seed repeats a run and shrinks the spread "
            f"over seeds), got {seeds}"
        )
    return seeds


def check_real(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """``value`` as a finite Python ``float`` (``int``, ``float`` or numpy scalar; never
    ``bool``), ``>= minimum`` (``> minimum`` if ``strict_minimum``) and ``<= maximum``.

    Examples:
        >>> check_real(2, "bandwidth", minimum=0, strict_minimum=True)
        2.0
        >>> check_real(float("nan"), "bandwidth")
        Traceback (most recent call last):
        ...
        ValueError: bandwidth must be a finite number..., got nan
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (numbers.Real, np.number))
        or isinstance(value, (complex, np.complexfloating))
    ):
        raise ArgumentTypeError(
            f"{name} must be a real number, got {value!r} ({type(value).__name__})"
        )
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        bound = (
            ("a positive number" if strict_minimum else "a non-negative number")
            if minimum == 0
            else f"{'>' if strict_minimum else '>='} {minimum:g}"
        )
        raise ValueError(f"{name} must be {bound}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value:g}")
    return value


def check_reals(values: Any, name: str, *, minimum: float | None = None) -> list[float]:
    """A non-empty sequence of finite numbers (each as :func:`check_real`), as a list.

    Examples:
        >>> check_reals((1e-3, 1), "ridges", minimum=0)
        [0.001, 1.0]
    """
    scalar = isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim == 0
    if isinstance(values, (str, bytes)) or scalar or not isinstance(values, Iterable):
        raise ArgumentTypeError(
            f"{name} must be a non-empty sequence of numbers, got {values!r}"
            + (
                f" (for one value, pass [{values!r}])"
                if scalar or isinstance(values, (numbers.Real, np.number))
                else ""
            )
        )
    values = [
        v.item() if isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 0 else v
        for v in (values.tolist() if isinstance(values, (np.ndarray, torch.Tensor)) else values)
    ]
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence of numbers, got an empty one")
    return [check_real(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(values)]


@overload
def check_choice(value: Any, name: str, choices: Iterable[str]) -> str: ...
@overload
def check_choice(value: Any, name: str, choices: Iterable[str | None]) -> str | None: ...
def check_choice(value: Any, name: str, choices: Iterable[str | None]) -> str | None:
    """``value`` as the element of ``choices`` it names, compared case-insensitively
    (``None`` only if it is a choice).

    Examples:
        >>> check_choice("CNTK", "kernel", ("laplace", "cnngp", "cntk"))
        'cntk'
        >>> check_choice("gauss", "kernel", ("laplace", "cntk"))
        Traceback (most recent call last):
        ...
        ValueError: kernel must be one of ...'laplace'...'cntk'..., got 'gauss'
    """
    choices = tuple(choices)
    if value is None and None in choices:
        return None
    if isinstance(value, str):
        for choice in choices:
            if choice is not None and choice.lower() == value.lower():
                return choice
    raise ValueError(
        f"{name} must be one of {', '.join(repr(c) for c in choices)} "
        f"(case-insensitive), got {value!r}"
    )


#: dtypes the kernels, solvers and estimators compute in
FLOAT_DTYPES = (torch.float32, torch.float64)


@overload
def check_dtype(
    dtype: Any, name: str = ..., *, allowed: Sequence[torch.dtype] = ..., allow_none: Literal[False]
) -> torch.dtype: ...
@overload
def check_dtype(
    dtype: Any, name: str = ..., *, allowed: Sequence[torch.dtype] = ..., allow_none: bool = ...
) -> torch.dtype | None: ...
def check_dtype(
    dtype: Any,
    name: str = "dtype",
    *,
    allowed: Sequence[torch.dtype] = FLOAT_DTYPES,
    allow_none: bool = True,
) -> torch.dtype | None:
    """``dtype`` as a floating ``torch.dtype`` among ``allowed``: a torch dtype, its name
    (``'float64'``, ``'torch.float32'``, case-insensitive) or a numpy floating dtype.

    Examples:
        >>> import numpy as np
        >>> check_dtype("Float64"), check_dtype(np.float32)
        (torch.float64, torch.float32)
    """
    if dtype is None and allow_none:
        return None
    out = dtype
    if isinstance(dtype, str):
        key = dtype.lower().removeprefix("torch.")
        out = getattr(torch, key, None) if key.isidentifier() else None
    elif isinstance(dtype, (np.dtype, type)) and not isinstance(dtype, torch.dtype):
        try:
            out = torch.from_numpy(np.zeros(0, dtype=dtype)).dtype
        except TypeError:
            out = None
    if not isinstance(out, torch.dtype):
        raise ArgumentTypeError(
            f"{name} must be a floating torch dtype ({', '.join(map(str, allowed))}), got {dtype!r}"
        )
    if out not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(map(str, allowed))}, got {out}"
            + ("" if out.is_floating_point else ": images would be truncated")
        )
    return out


def as_tensor(
    x: Any, name: str, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """``x`` (tensor, array or nested list) as a floating tensor; integer input becomes float32.

    Examples:
        >>> as_tensor([[1, 2], [3, 4]], "A").dtype
        torch.float32
    """
    if scipy_sparse(x):
        raise ArgumentTypeError(
            f"{name} must be a dense tensor or array, got a scipy sparse {type(x).__name__} "
            f"(pass {name}.toarray())"
        )
    x = _pandas_values(x, name)
    if not isinstance(x, (np.ndarray, torch.Tensor)) and hasattr(x, "__array__"):
        x = np.asarray(x)  # an array-like
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufc":
            raise ArgumentTypeError(f"{name} must hold numbers, got an array of dtype {x.dtype}")
        # a read-only array (a pandas frame's values, a broadcast view) is copied: torch
        # warns, and a tensor over it would make any later write undefined behaviour; so is
        # a view with a negative stride (``x[::-1]``), which torch cannot represent
        reversed_view = any(s < 0 for s in x.strides)
        x = torch.from_numpy(x if x.flags.writeable and not reversed_view else x.copy())
    elif not isinstance(x, torch.Tensor):
        try:  # straight to the requested dtype: Python floats are doubles, not float32
            x = torch.as_tensor(
                x, dtype=dtype if dtype is not None and dtype.is_floating_point else None
            )
        except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
            raise ArgumentTypeError(
                f"{name} must be a tensor or array, got {type(x).__name__}"
            ) from err
    if x.is_complex():
        raise ArgumentTypeError(
            f"{name} must be real, got a {x.dtype} tensor (pass its real "
            "part, or its modulus, explicitly)"
        )
    check_not_meta(x, name)
    if dtype is None and not x.is_floating_point():
        dtype = torch.get_default_dtype()
    return x.to(device=device, dtype=dtype)


def _pandas_values(x: Any, name: str) -> Any:
    """A pandas ``DataFrame`` or ``Series`` as a numpy array of its columns' common numpy
    dtype, so that nullable columns (``"Float64"``, ``"Int64"``, ``"boolean"``, whose
    ``np.asarray`` is an object array) read as the numbers they hold; ``ValueError`` naming
    ``name`` when it holds missing values (``pd.NA`` or NaN), which no float reads (``float()``
    of ``pd.NA`` is a ``TypeError``). Anything else is returned as it is."""
    if not type(x).__module__.startswith("pandas") or not hasattr(x, "isna"):
        return x
    missing = int(np.asarray(x.isna()).sum())
    if missing:
        raise ValueError(
            f"{name} contains {missing} missing value{'s' if missing > 1 else ''} "
            "(pd.NA or NaN); drop or impute them first"
        )
    dtypes = [x.dtype] if getattr(x, "ndim", 2) == 1 else list(x.dtypes)
    try:  # a nullable dtype names its numpy one; a categorical or a string dtype has none
        dtype = np.result_type(*(getattr(d, "numpy_dtype", d) for d in dtypes))
    except TypeError:
        return x
    return x.to_numpy(dtype=dtype)


def check_not_meta(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` for a tensor on the ``'meta'`` device (a shape without data).

    Examples:
        >>> import torch
        >>> check_not_meta(torch.zeros(2, device="meta"), "X")
        Traceback (most recent call last):
        ...
        ValueError: X is on the 'meta' device: it has a shape but no values; ...
    """
    if x.device.type == "meta":
        raise ValueError(
            f"{name} is on the 'meta' device: it has a shape but no values; "
            "pass a tensor with data (on 'cpu' or 'cuda')"
        )
    return x


def scipy_sparse(x: Any) -> bool:
    """Whether ``x`` is a scipy sparse matrix or array (without importing scipy).

    Examples:
        >>> scipy_sparse([[1.0]])
        False
    """
    module = type(x).__module__ or ""
    return module.startswith("scipy.sparse")


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a Python ``bool`` (``bool`` or ``numpy.bool_``; not a string or a number,
    whose truth would be taken silently).

    Examples:
        >>> check_bool(True, "progress")
        True
        >>> check_bool("no", "jitter")
        Traceback (most recent call last):
        ...
        agop.validation.ArgumentTypeError: jitter must be True or False, got 'no' (str)
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(
            f"{name} must be True or False, got {value!r} ({type(value).__name__})"
        )
    return bool(value)


def check_images(
    x: Any,
    name: str = "X",
    *,
    channels: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``x`` as a finite image batch of shape ``(n, c, H, W)``; raise ``ValueError`` otherwise.

    Examples:
        >>> import torch
        >>> check_images(torch.zeros(2, 3, 8, 8), channels=3).shape
        torch.Size([2, 3, 8, 8])
        >>> check_images(torch.zeros(3, 8, 8))
        Traceback (most recent call last):
        ...
        ValueError: X must ...(n, c, H, W)...
    """
    x = as_tensor(x, name, dtype=dtype, device=device)
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (n, c, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if min(x.shape[1:]) == 0:
        raise ValueError(
            f"{name} must have at least one channel, row and column, got shape {tuple(x.shape)}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {tuple(x.shape)}")
    check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` when ``x`` holds NaN or infinity.

    Examples:
        >>> import torch
        >>> check_finite(torch.tensor([1.0, float("inf")]), "K")
        Traceback (most recent call last):
        ...
        ValueError: K ...
    """
    if not all_finite(x):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    return x


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is finite, in one pass and without a temporary of ``x``'s
    size (``torch.isfinite`` makes several: 650 MB for a 400 MB kernel matrix): the smallest
    and the largest entry (``torch.aminmax`` propagates NaN) are finite exactly when all are.

    Examples:
        >>> import torch
        >>> all_finite(torch.tensor([1.0, -2.0])), all_finite(torch.tensor([1.0, float("nan")]))
        (True, False)
        >>> all_finite(torch.tensor([float("-inf"), 0.0])), all_finite(torch.tensor([1, 2]))
        (False, True)
    """
    if x.is_complex():
        return bool(torch.isfinite(x).all())
    if not x.is_floating_point() or x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def check_square(A: torch.Tensor, name: str, size: int | None = None) -> torch.Tensor:
    """Raise ``ValueError`` unless ``A`` is a finite square matrix (of side ``size`` if given).

    Examples:
        >>> import torch
        >>> check_square(torch.eye(3), "M", size=4)
        Traceback (most recent call last):
        ...
        ValueError: M must be ...
    """
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(A.shape)}")
    if A.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(A.shape)}")
    if size is not None and A.shape[0] != size:
        raise ValueError(f"{name} must be {size} x {size}, got shape {tuple(A.shape)}")
    return check_finite(A, name)


def check_symmetric(A: torch.Tensor, name: str, *, rtol: float | None = None) -> torch.Tensor:
    r"""Raise ``ValueError`` unless :math:`|A - A^\top| \le \mathrm{rtol} \max |A|` entrywise
    (``rtol=None``: :math:`\sqrt{\varepsilon}` of ``A``'s dtype, far above the round-off of a
    product computed twice).

    Examples:
        >>> import torch
        >>> A = torch.tensor([[1.0, 2.0], [2.0 + 1e-6, 1.0]])
        >>> check_symmetric(A, "K") is A  # within sqrt(eps) of float32: accepted
        True
        >>> check_symmetric(torch.tensor([[1.0, 2.0], [0.0, 1.0]]), "K")
        Traceback (most recent call last):
        ...
        ValueError: K must be symmetric...
    """
    rtol = float(torch.finfo(A.dtype).eps) ** 0.5 if rtol is None else rtol
    scale = float(A.abs().max()) if A.numel() else 0.0
    gap = float((A - A.T).abs().max()) if A.numel() else 0.0
    if gap > rtol * scale:
        raise ValueError(
            f"{name} must be symmetric; max |{name} - {name}^T| = {gap:.3g} is "
            f"{gap / scale:.3g} of its largest entry (tolerance {rtol:.3g})"
        )
    return A


def low_precision(dtype: torch.dtype) -> bool:
    """Whether ``dtype`` is a floating type narrower than float32 (torch's eigensolvers and
    factorisations do not take float16 or bfloat16: compute in float32, return in it).

    Examples:
        >>> import torch
        >>> low_precision(torch.bfloat16), low_precision(torch.float32)
        (True, False)
    """
    return dtype.is_floating_point and torch.finfo(dtype).bits < 32


def check_result(
    x: torch.Tensor, what: str, *, inputs: dict[str, torch.Tensor] | None = None, hint: str = ""
) -> torch.Tensor:
    """Return ``x`` if it is finite; else raise ``ValueError`` saying that ``what`` overflowed
    (or lost precision to NaN) in ``x``'s dtype, the largest magnitude of each of ``inputs``,
    and how to rescale (``hint``, after a default advice).

    Examples:
        >>> import torch
        >>> x = torch.tensor([3e38], dtype=torch.float32)
        >>> check_result(x * 10, "the kernel matrix", inputs={"X": x})
        Traceback (most recent call last):
        ...
        ValueError: the kernel matrix ...float32...
    """
    if all_finite(x):
        return x
    bad = int((~torch.isfinite(x)).sum())
    info = torch.finfo(x.dtype) if x.is_floating_point() else None
    sizes = ", ".join(
        f"max |{k}| = {float(v.detach().abs().max()):.3g}"
        for k, v in (inputs or {}).items()
        if v.numel()
    )
    limit = f" (largest {x.dtype} is {info.max:.3g})" if info is not None else ""
    hint = hint or ("rescale the inputs (images to [0, 1], say) or compute in float64")
    raise ValueError(
        f"{what} is not finite: {bad} of {x.numel()} values are NaN or inf, "
        f"an overflow in {x.dtype}{limit}"
        + (f"; {sizes}" if sizes else "")
        + f". {hint[0].upper()}{hint[1:]}"
    )


def check_psd(
    A: Any, name: str = "M", size: int | None = None, *, rtol: float = 1e-6
) -> torch.Tensor:
    """``A`` as a symmetric positive semi-definite matrix; raise ``ValueError`` otherwise.

    Symmetry is checked to ``rtol`` of the largest entry, and the smallest eigenvalue must not
    fall below ``-rtol`` times the largest.

    Examples:
        >>> import torch
        >>> check_psd(torch.tensor([[2.0, 1.0], [1.0, 2.0]])).tolist()  # eigenvalues 1, 3
        [[2.0, 1.0], [1.0, 2.0]]
        >>> check_psd(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues -1, 3
        Traceback (most recent call last):
        ...
        ValueError: M ...
    """
    A = check_square(as_tensor(A, name), name, size)
    if low_precision(A.dtype):  # its own rounding is then far above 1e-6
        rtol = max(rtol, 8 * torch.finfo(A.dtype).eps)
    scale = A.abs().max().clamp_min(torch.finfo(A.dtype).tiny)
    if (A - A.T).abs().max() > rtol * scale * 10:
        raise ValueError(f"{name} must be symmetric positive semi-definite; it is not symmetric")
    B = A.detach()  # a check of values: no graph, and no warning for a tensor with grad
    B = B.to(torch.float32) if low_precision(B.dtype) else B
    eig = torch.linalg.eigvalsh((B + B.T) / 2)
    if eig[0] < -rtol * max(float(eig[-1]), float(scale)):
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is {float(eig[0]):.3g}"
        )
    return A


def psd_tolerance(dtype: torch.dtype) -> float:
    r"""``rtol`` for :func:`check_psd` of a matrix computed in ``dtype``: ``1e-6``, or
    :math:`\sqrt{\varepsilon}` when larger (float32 and below), the size of the negative round-off
    eigenvalues of a PSD matrix such as an AGOP computed in that precision.

    Examples:
        >>> import torch
        >>> psd_tolerance(torch.float64), round(psd_tolerance(torch.float32), 6)
        (1e-06, 0.000345)
    """
    return max(1e-6, torch.finfo(dtype).eps ** 0.5) if dtype.is_floating_point else 1e-6


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _stacklevel_outside_agop() -> int:
    """The ``stacklevel`` for ``warnings.warn`` that names the first frame outside the agop
    package: the user's line that called into agop, however many agop frames (private
    helpers, wrappers) lie between. Call it in the argument list of ``warnings.warn``."""
    frame = sys._getframe(1)  # the function that calls warnings.warn: stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


#: where a container's memory limit is written (cgroup v2, then v1)
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _memory_bytes() -> int:
    """The memory this process may use, in bytes: the least of the machine's physical memory
    (1 TiB when it cannot be read), the process's address-space limit (``ulimit -v``) and its
    container's limit (cgroup), where those are set."""
    try:
        have = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        have = 2**40
    if resource is not None:
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            have = min(have, int(soft))
    for path in _CGROUP_LIMITS:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:  # "max": no limit
            have = min(have, int(text))
    return have


def _check_allocation(n_values: int, itemsize: int, names: str, what: str) -> None:
    """``ValueError`` naming ``names`` (the arguments that set the size) when ``what`` of
    ``n_values`` values of ``itemsize`` bytes would not fit in this machine's memory: an error
    up front, before any fitted state is touched, rather than an allocator's failure (or an
    overflow in a shape) deep inside the fit."""
    need = int(n_values) * int(itemsize)
    have = _memory_bytes()
    if need > have:
        raise ValueError(
            f"{names}: {what} would need {need / 2**30:.3g} GiB, more than this machine's "
            f"{have / 2**30:.3g} GiB of memory; ask for fewer or smaller"
        )
