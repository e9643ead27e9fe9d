"""Reference CNTK/CNNGP values from the real Neural Tangents, for tests/test_kernels.py
(``test_cntk_matches_neural_tangents``, reading tests/data/neural_tangents_cntk.json).

NOT run in CI, and not part of the package: Neural Tangents needs an old JAX. It was run once,
by hand, in a scratch virtual environment outside the repository::

    python3 -m venv /tmp/ntenv
    /tmp/ntenv/bin/pip install neural-tangents==0.6.5 "jax==0.4.23" "jaxlib==0.4.23" "numpy<2" \
        "scipy<1.13" "ml-dtypes<0.4"
    /tmp/ntenv/bin/pip uninstall -y tensorflow tf2jax   # only needed by nt.experimental
    # and comment out ``from . import experimental`` in neural_tangents/__init__.py
    /tmp/ntenv/bin/python tools/neural_tangents_reference.py tests/data/neural_tangents_cntk.json

The architecture (the book's appendix book/92_kernels.md, "Kernels on patches"):
``[Conv(w, (k, k), W_std=k, b_std=0, padding='VALID') -> ABRelu(0, sqrt(2))] * depth ->
Flatten() -> Dense(1, W_std=1)`` in the NTK parameterisation. With a metric ``M`` the first
layer reads the patch vectors transformed by ``M^{1/2}``; stax cannot do that directly, so the
script patch-expands the images: the ``q = c k^2`` transformed patch coordinates become the
channels of an ``(H-k+1) x (W-k+1)`` image, scaled by ``sqrt(q/c)``, and the first layer is a
``1 x 1`` convolution with ``W_std=1`` (its input covariance is then ``(1/q)(q/c) <u, v> =
(1/c) <x[j], z[j]>_M``, exactly the first layer above). With ``M = I`` both routes are computed
and must agree.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from neural_tangents import stax  # noqa: E402


def patches(x: np.ndarray, k: int) -> np.ndarray:
    """(n, c, H, W) -> (n, H-k+1, W-k+1, c*k*k) in (channel, row, col) order (torch's unfold)."""
    n, c, H, W = x.shape
    out = np.empty((n, H - k + 1, W - k + 1, c, k, k), dtype=x.dtype)
    for i in range(H - k + 1):
        for j in range(W - k + 1):
            out[:, i, j] = x[:, :, i : i + k, j : j + k]
    return out.reshape(n, H - k + 1, W - k + 1, c * k * k)


def sqrtm_psd(M: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(M)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def direct(X, Z, k, depth, dtype):
    layers = []
    for _ in range(depth):
        layers += [
            stax.Conv(8, (k, k), W_std=float(k), b_std=0.0, padding="VALID"),
            stax.ABRelu(0.0, np.sqrt(2.0)),
        ]
    _, _, kernel_fn = stax.serial(*layers, stax.Flatten(), stax.Dense(1, W_std=1.0))
    x = np.transpose(X, (0, 2, 3, 1)).astype(dtype)
    z = np.transpose(Z, (0, 2, 3, 1)).astype(dtype)
    return kernel_fn(x, z, ("nngp", "ntk"))


def expanded(X, Z, k, depth, M, dtype):
    c = X.shape[1]
    q = c * k * k
    R = sqrtm_psd(M)
    scale = np.sqrt(q / c)
    u = patches(X, k) @ R.T * scale
    v = patches(Z, k) @ R.T * scale
    layers = [
        stax.Conv(8, (1, 1), W_std=1.0, b_std=0.0, padding="VALID"),
        stax.ABRelu(0.0, np.sqrt(2.0)),
    ]
    for _ in range(depth - 1):
        layers += [
            stax.Conv(8, (k, k), W_std=float(k), b_std=0.0, padding="VALID"),
            stax.ABRelu(0.0, np.sqrt(2.0)),
        ]
    _, _, kernel_fn = stax.serial(*layers, stax.Flatten(), stax.Dense(1, W_std=1.0))
    return kernel_fn(u.astype(dtype), v.astype(dtype), ("nngp", "ntk"))


def main(path: str) -> None:
    rng = np.random.default_rng(20231105)
    cases = []
    specs = [  # (c, H, W, k, depth, metric)
        (1, 7, 7, 3, 1, False),
        (1, 7, 7, 3, 2, False),
        (1, 8, 8, 3, 3, False),
        (2, 6, 7, 3, 2, False),
        (3, 8, 8, 3, 2, True),
        (1, 9, 9, 3, 3, True),
        (2, 7, 7, 5, 1, True),
    ]
    for c, H, W, k, depth, metric in specs:
        X = rng.standard_normal((3, c, H, W))
        Z = rng.standard_normal((2, c, H, W))
        X[2, :, : H // 2] = 0.0  # zero patches
        Z[0] = X[0]  # a coinciding point
        q = c * k * k
        if metric:
            A = rng.standard_normal((q, q)) / np.sqrt(q)
            M = A @ A.T + 0.1 * np.eye(q)
        else:
            M = np.eye(q)
        ref64 = expanded(X, Z, k, depth, M, np.float64)
        ref32 = expanded(X, Z, k, depth, M, np.float32)
        if not metric:
            d64 = direct(X, Z, k, depth, np.float64)
            for name in ("nngp", "ntk"):
                a, b = np.asarray(getattr(d64, name)), np.asarray(getattr(ref64, name))
                # At the coinciding point (X[0], Z[0]) the angle is 0 up to rounding, and NT's
                # own value carries an error of order sqrt(eps) there: compare it loosely.
                loose = np.zeros_like(a, dtype=bool)
                loose[0, 0] = True
                assert np.allclose(a[~loose], b[~loose], rtol=1e-10, atol=0), (name, a - b)
                assert np.allclose(a[loose], b[loose], rtol=1e-7, atol=0), (name, a - b)
        cases.append(
            {
                "c": c,
                "H": H,
                "W": W,
                "k": k,
                "depth": depth,
                "X": X.tolist(),
                "Z": Z.tolist(),
                "M": M.tolist(),
                "nngp_float64": np.asarray(ref64.nngp).tolist(),
                "ntk_float64": np.asarray(ref64.ntk).tolist(),
                "nngp_float32": np.asarray(ref32.nngp, dtype=np.float64).tolist(),
                "ntk_float32": np.asarray(ref32.ntk, dtype=np.float64).tolist(),
            }
        )
    import neural_tangents

    meta = {
        "generator": "tools/neural_tangents_reference.py",
        "neural_tangents": neural_tangents.__version__,
        "jax": jax.__version__,
        "architecture": "[Conv(w,(k,k),W_std=k,b_std=0,VALID) -> ABRelu(0,sqrt2)]*depth"
        " -> Flatten -> Dense(1,W_std=1), NTK parameterisation;"
        " first layer on M^{1/2}-transformed patches",
    }
    with open(path, "w") as fh:
        json.dump({"meta": meta, "cases": cases}, fh)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/neural_tangents_cntk.json")
