r"""Emergence of localised receptive fields in fully connected networks, through the AGOP.

Ingrosso and Goldt (2022) train fully connected networks on translation-invariant inputs
(:func:`agop.data.emergence_task`: two classes of a non-linear Gaussian field that differ in
correlation length, the same covariance :math:`\exp(-d/\xi)` at every gain) and find
first-layer receptive fields that localise when, and only when, the inputs are non-Gaussian.
This module measures the same thing for three objects, with the inverse participation ratio
(:func:`agop.localization.ipr`):

* the rows :math:`w_k` of the first layer of a one-hidden-layer network
  :math:`f(x) = \sum_k a_k \phi(w_k^\top x + b_k)`;
* the top eigenvectors of that network's AGOP over whole inputs,

  .. math:: \mathrm{AGOP}(f) = \frac1n \sum_i \nabla f(x_i) \nabla f(x_i)^\top
            = W^\top G W, \qquad
            G = \frac1n \sum_i (a \odot \phi'(W x_i + b))(a \odot \phi'(W x_i + b))^\top;

* the top eigenvectors of the metric :math:`M` of a fully connected RFM
  (:class:`agop.RFM`), a kernel machine that has no network at all: the metric of its last
  AGOP round, whichever round its validation split keeps for predicting (``M = I``, kept
  when no round helps, has no direction to measure).

The networks of one sweep point are trained together, as one batch of independent networks
(:class:`TwoLayerNets`): minibatch Adam on the squared error to labels :math:`\pm 1`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from tqdm.auto import tqdm

from agop._typing import Device
from agop.data.emergence import emergence_task
from agop.localization import ipr
from agop.rfm import RFM
from agop.runtime import default_device
from agop.validation import (
    as_tensor,
    check_choice,
    check_finite,
    check_int,
    check_real,
    check_reals,
    check_seed,
)

ACTIVATIONS = ("relu", "erf")
LABELS = ("true", "shuffled")


def _phi(h: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.relu(h) if activation == "relu" else torch.erf(h / math.sqrt(2))


def _dphi(h: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return (h > 0).to(h.dtype)
    return math.sqrt(2 / math.pi) * torch.exp(-h * h / 2)


@dataclasses.dataclass
class TwoLayerNets:
    r"""``E`` independent one-hidden-layer networks
    :math:`f_e(x) = \sum_k a_{ek} \phi(w_{ek}^\top x + b_{ek})`, as batched tensors:
    ``W`` ``(E, K, D)``, ``b`` and ``a`` ``(E, K)``; ``activation`` is ``'relu'`` or
    ``'erf'`` (:math:`\phi(h) = \operatorname{erf}(h / \sqrt2)`); ``W0``: the first layer at
    initialisation (set by :func:`train_two_layer`), so that ``W - W0`` is what training changed.

    Examples:
        >>> import torch
        >>> nets = TwoLayerNets(torch.ones(1, 2, 3), torch.zeros(1, 2),
        ...                     torch.tensor([[1.0, -2.0]]), "relu")
        >>> nets(torch.tensor([[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]]))  # (1 - 2) * relu(sum x)
        tensor([[-3., -0.]])
    """

    W: torch.Tensor
    b: torch.Tensor
    a: torch.Tensor
    activation: str = "relu"
    W0: torch.Tensor | None = None

    def hidden(self, X: torch.Tensor) -> torch.Tensor:
        """Pre-activations ``(E, n, K)`` for inputs ``(n, D)`` shared by all networks or
        ``(E, n, D)``, one set per network."""
        if X.ndim == 2:
            return torch.einsum("nd,ekd->enk", X, self.W) + self.b[:, None, :]
        return torch.einsum("end,ekd->enk", X, self.W) + self.b[:, None, :]

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs ``(E, n)``."""
        return torch.einsum("enk,ek->en", _phi(self.hidden(X), self.activation), self.a)


def train_two_layer(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    width: int,
    steps: int,
    lr: float = 3e-3,
    batch_size: int = 256,
    init_scale: float = 0.3,
    activation: str = "relu",
    seed: int | Sequence[int] = 0,
) -> TwoLayerNets:
    r"""Train ``E`` one-hidden-layer networks of ``width`` hidden units at once, network
    ``e`` on ``X[e]`` (``(E, n, D)``) with labels ``y[e]`` in ``{0, 1}`` (``(E, n)``).

    Initialisation: :math:`W_{kd} \sim \mathcal N(0, s^2 / D)` (:math:`s` = ``init_scale``),
    :math:`a_k \sim \mathcal N(0, 1/K)`, :math:`b = 0`. Each of ``steps`` steps draws a
    minibatch of ``batch_size`` examples per network and takes one Adam step (learning rate
    ``lr``) on the mean squared error between :math:`f(x)` and :math:`2y - 1`. Seeded:
    ``seed`` an int seeds one generator for all the networks; ``E`` seeds give network ``e``
    its own generator (its start and its minibatches), so that it is the same network
    whichever networks train with it.

    Examples:
        A linearly separable problem is learned:

        >>> import torch
        >>> X = torch.randn(1, 200, 5, generator=torch.Generator().manual_seed(0))
        >>> y = (X[..., 0] > 0).long()
        >>> nets = train_two_layer(X, y, width=8, steps=300, lr=1e-2, batch_size=50)
        >>> float(((nets(X) > 0).long() == y).float().mean()) > 0.95
        True
    """
    X, y = as_tensor(X, "X"), torch.as_tensor(y)
    if X.ndim != 3 or y.shape != X.shape[:2]:
        raise ValueError(
            f"X must be (E, n, D) and y (E, n), got {tuple(X.shape)} and {tuple(y.shape)}"
        )
    check_finite(X, "X")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(
            f"y must hold labels in {{0, 1}}, got values {torch.unique(y)[:5].tolist()}"
        )
    width = check_int(width, "width", minimum=1)
    steps = check_int(steps, "steps", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_real(lr, "lr", minimum=0, strict_minimum=True)
    init_scale = check_real(init_scale, "init_scale", minimum=0)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    E, n, D = X.shape
    dtype = X.dtype
    batch = min(batch_size, n)
    if isinstance(seed, Sequence):
        gens = [torch.Generator().manual_seed(check_seed(s, "seed[e]")) for s in seed]
        if len(gens) != E:
            raise ValueError(f"seed must be an int or {E} ints (one per network), got {len(gens)}")
        drawn = [(torch.randn(width, D, generator=g, dtype=dtype),
                  torch.randn(width, generator=g, dtype=dtype)) for g in gens]  # fmt: skip
        W = (init_scale / math.sqrt(D)) * torch.stack([w for w, _ in drawn])
        a = torch.stack([v for _, v in drawn]) / math.sqrt(width)

        def minibatch() -> torch.Tensor:
            return torch.stack([torch.randint(0, n, (batch,), generator=g) for g in gens])

    else:
        g = torch.Generator().manual_seed(check_seed(seed))
        W = (init_scale / math.sqrt(D)) * torch.randn(E, width, D, generator=g, dtype=dtype)
        a = torch.randn(E, width, generator=g, dtype=dtype) / math.sqrt(width)

        def minibatch() -> torch.Tensor:
            return torch.randint(0, n, (E, batch), generator=g)

    b = torch.zeros(E, width, dtype=dtype)
    W_init = W.clone().to(X.device)
    params = [p.to(X.device).requires_grad_() for p in (W, b, a)]
    nets = TwoLayerNets(params[0], params[1], params[2], activation=activation)
    target = 2.0 * y.to(dtype) - 1
    opt = torch.optim.Adam(params, lr=lr)
    rows = torch.arange(E, device=X.device)[:, None]
    for _ in range(steps):
        idx = minibatch().to(X.device)
        loss = ((nets(X[rows, idx]) - target[rows, idx]) ** 2).mean() * E
        opt.zero_grad()
        loss.backward()
        opt.step()
    W, b, a = (p.detach() for p in params)
    return TwoLayerNets(W, b, a, activation=activation, W0=W_init)


def two_layer_agop(nets: TwoLayerNets, X: torch.Tensor) -> torch.Tensor:
    r"""The AGOP over whole inputs of each network, :math:`W^\top G W` with
    :math:`G = \frac1n \sum_i d_i d_i^\top`, :math:`d_i = a \odot \phi'(W x_i + b)`
    (``(E, D, D)``; ``X`` is ``(n, D)`` or ``(E, n, D)``).

    Examples:
        Against autograd, one sample at a time:

        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> nets = TwoLayerNets(torch.randn(1, 3, 4, generator=g, dtype=torch.float64),
        ...                     torch.randn(1, 3, generator=g, dtype=torch.float64),
        ...                     torch.randn(1, 3, generator=g, dtype=torch.float64), "erf")
        >>> X = torch.randn(5, 4, generator=g, dtype=torch.float64)
        >>> grads = [torch.autograd.functional.jacobian(lambda x: nets(x[None])[0, 0], x)
        ...          for x in X]
        >>> brute = sum(torch.outer(v, v) for v in grads) / 5
        >>> torch.allclose(two_layer_agop(nets, X)[0], brute)
        True
    """
    d = _dphi(nets.hidden(X), nets.activation) * nets.a[:, None, :]  # (E, n, K)
    G = torch.einsum("enk,enl->ekl", d, d) / d.shape[1]
    return nets.W.transpose(1, 2) @ G @ nets.W


def top_eigenvectors(A: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` eigenvectors of the symmetric ``A`` (``(..., D, D)``) with the largest
    eigenvalues, as rows ``(..., k, D)``, largest first.

    Examples:
        >>> import torch
        >>> top_eigenvectors(torch.diag(torch.tensor([1.0, 3.0, 2.0])), 2).abs()
        tensor([[0., 1., 0.],
                [0., 0., 1.]])
    """
    A = as_tensor(A, "A")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be square matrices (..., D, D), got shape {tuple(A.shape)}")
    check_finite(A, "A")
    k = check_int(k, "k", minimum=1, maximum=A.shape[-1])
    vecs = torch.linalg.eigh((A + A.transpose(-1, -2)) / 2)[1]
    return vecs[..., -k:].flip(-1).transpose(-1, -2)


@dataclasses.dataclass
class EmergenceResult:
    """Rows of :func:`emergence_sweep` (one per gain, seed and label condition: the mean IPR
    of the receptive fields ``ipr_weights``, of what training changed in them (the rows of
    ``W - W0``) ``ipr_delta``, of the top eigenvectors of :math:`W^\\top W` ``ipr_wtw`` and of the
    AGOP ``ipr_agop``, of the top eigenvectors of the RFM's ``M`` ``ipr_rfm``, with test
    accuracies: the network's ``acc_net``, the RFM's kept iterate's ``acc_rfm``, its round 0
    (``M = I``) ``acc_rfm_identity`` and its last round ``acc_rfm_last``), and one
    example per ``(gain, labels)`` (the first seed): ``W``, ``agop``, ``M``. See
    :func:`emergence_sweep`'s example."""

    rows: list[dict]
    examples: dict
    settings: dict

    def summary(self, stat: str, gain: float, labels: str = "true") -> tuple[float, float]:
        """Mean and standard deviation over seeds of column ``stat``.

        Examples:
            >>> r = EmergenceResult([{"gain": 1.0, "labels": "true", "x": v}
            ...                      for v in (1.0, 3.0)], {}, {})
            >>> r.summary("x", 1.0)
            (2.0, 1.0)
        """
        values = [r[stat] for r in self.rows if r["gain"] == gain and r["labels"] == labels]
        if not values:
            raise KeyError(f"no rows for gain={gain}, labels={labels!r}")
        return float(np.mean(values)), float(np.std(values))

    @property
    def gains(self) -> list[float]:
        """The gains of the rows, in the order the sweep ran them.

        Examples:
            >>> EmergenceResult([{"gain": g} for g in (0.0, 3.0, 0.0)], {}, {}).gains
            [0.0, 3.0]
        """
        return list(dict.fromkeys(r["gain"] for r in self.rows))

    def localisation(self, stat: str) -> tuple[bool, float, float, float]:
        """Whether column ``stat`` localises, with the means it is judged on:
        ``(ok, m0, m1, ms)``, the mean over seeds at the first gain ``m0``, at the last gain
        ``m1`` and with shuffled labels at the last gain ``ms``. ``ok``: ``m1`` exceeds ``m0``
        by more than the sum of the two seed spreads, and ``ms`` by more than the sum of
        theirs.

        Examples:
            >>> rows = [{"gain": g, "labels": lab, "seed": s, "x": v}
            ...         for g, lab, vals in [(0.0, "true", (0.1, 0.1)),
            ...                              (3.0, "true", (0.5, 0.7)),
            ...                              (3.0, "shuffled", (0.1, 0.3))]
            ...         for s, v in enumerate(vals)]
            >>> ok, m0, m1, ms = EmergenceResult(rows, {}, {}).localisation("x")
            >>> ok, round(m0, 3), round(m1, 3), round(ms, 3)
            (True, 0.1, 0.6, 0.2)
        """
        m0, s0 = self.summary(stat, self.gains[0])
        m1, s1 = self.summary(stat, self.gains[-1])
        ms, ss = self.summary(stat, self.gains[-1], "shuffled")
        return (m1 - m0 > s0 + s1 and m1 - ms > s1 + ss), m0, m1, ms

    def kept_identity(self) -> float:
        """The fraction of the RFM fits on the true labels whose validation split kept round
        0, the plain kernel with ``M = I``.

        Examples:
            >>> rows = [{"labels": lab, "rfm_best_iter": i} for lab, i in
            ...         [("true", 0), ("true", 2), ("shuffled", 0)]]
            >>> EmergenceResult(rows, {}, {}).kept_identity()
            0.5
        """
        return float(np.mean([r["rfm_best_iter"] == 0 for r in self.rows if r["labels"] == "true"]))


def emergence_sweep(
    gains: Sequence[float],
    seeds: Sequence[int],
    *,
    D: int = 40,
    n_train: int = 4000,
    n_test: int = 1000,
    xi: tuple[float, float] = (1.0, 2.0),
    width: int = 8,
    steps: int = 3000,
    lr: float = 3e-3,
    batch_size: int = 256,
    activation: str = "erf",
    n_top: int = 3,
    rfm_train: int = 1000,
    rfm_iter: int = 3,
    bandwidth: float = 10.0,
    shuffled: bool = True,
    dtype: torch.dtype = torch.float32,
    device: Device | None = None,
    progress: bool = False,
) -> EmergenceResult:
    r"""For every gain: draw :func:`agop.data.emergence_task` data per seed, train one network
    per seed on the true labels and (``shuffled``) one on a permutation of them, all together
    (:func:`train_two_layer`; the networks of seed ``s`` are seeded with ``s``, so the
    true- and shuffled-label networks share their start, and a seed's rows do not depend on
    the other seeds swept with it), fit an :class:`agop.RFM` on the first ``rfm_train`` training
    examples with the same labels, and measure the mean IPR of the network's ``width``
    receptive fields and of their changes from initialisation, of the top ``n_top``
    eigenvectors of :math:`W^\top W` and of its AGOP (over its training inputs), and of the top
    ``n_top`` eigenvectors of the RFM's ``M``; the RFM's test accuracy at round 0 (``M = I``)
    and at its last round tells whether its metric learned anything. Gain 0 is the Gaussian
    field with the same covariance: the null. Networks and RFMs run on ``device`` (``None``:
    CUDA when available); the results come back on the CPU.

    Examples:
        >>> res = emergence_sweep([0.0], [0], D=8, n_train=60, n_test=20, width=2, steps=5,
        ...                       rfm_train=40, rfm_iter=1, shuffled=False)
        >>> sorted(k for k in res.rows[0] if k.startswith("ipr")), len(res.rows)
        (['ipr_agop', 'ipr_delta', 'ipr_rfm', 'ipr_weights', 'ipr_wtw'], 1)
    """

    gains = check_reals(gains, "gains", minimum=0)
    seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    n_top = check_int(n_top, "n_top", minimum=1, maximum=D)
    rfm_train = check_int(rfm_train, "rfm_train", minimum=4, maximum=n_train)
    dev = default_device(device)  # the networks train there too
    conditions = [(s, lab) for s in seeds for lab in (LABELS if shuffled else LABELS[:1])]
    rows, examples = [], {}
    for gain in tqdm(gains, desc="gains", disable=not progress):
        Xs, ys, tests = [], [], []
        for seed, labels in conditions:
            X, y = emergence_task(n_train + n_test, D, gain=gain, xi=xi, seed=seed, dtype=dtype)
            X, y, Xt, yt = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
            if labels == "shuffled":
                y = y[torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))]
            Xs.append(X)
            ys.append(y)
            tests.append((Xt, yt))
        X_all, y_all = torch.stack(Xs).to(dev), torch.stack(ys).to(dev)
        nets = train_two_layer(
            X_all,
            y_all,
            width=width,
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            activation=activation,
            seed=[seed for seed, _ in conditions],  # a seed's networks: the same start
        )
        agops = two_layer_agop(nets, X_all)
        ipr_w = ipr(nets.W).mean(-1).cpu()
        ipr_d = ipr(nets.W - cast(torch.Tensor, nets.W0)).mean(-1).cpu()
        wtw = nets.W.transpose(1, 2) @ nets.W
        ipr_g = ipr(top_eigenvectors(wtw, n_top)).mean(-1).cpu()
        ipr_a = ipr(top_eigenvectors(agops, n_top)).mean(-1).cpu()
        for e, (seed, labels) in enumerate(conditions):
            Xt, yt = tests[e]
            rfm = RFM(
                n_iter=rfm_iter,
                random_state=seed,
                bandwidth=bandwidth,
                device=device,
                progress=False,
            ).fit(Xs[e][:rfm_train], ys[e][:rfm_train])
            M = rfm.Ms_[-1].cpu()  # the last AGOP round, whichever iterate validation keeps
            acc_net = float(((nets(Xt.to(dev))[e].cpu() > 0).long() == yt).float().mean())
            acc_rounds = rfm.score_iterations(Xt, yt.numpy())
            rows.append(
                {
                    "gain": gain,
                    "seed": seed,
                    "labels": labels,
                    "ipr_weights": float(ipr_w[e]),
                    "ipr_delta": float(ipr_d[e]),
                    "ipr_wtw": float(ipr_g[e]),
                    "ipr_agop": float(ipr_a[e]),
                    "ipr_rfm": float(ipr(top_eigenvectors(M, n_top)).mean()),
                    "acc_net": acc_net,
                    "acc_rfm": float(rfm.score(Xt, yt.numpy())),
                    "acc_rfm_last": float(acc_rounds[-1]),
                    "acc_rfm_identity": float(acc_rounds[0]),
                    "rfm_best_iter": int(rfm.best_iter_),
                }
            )
            if seed == seeds[0]:
                examples[(gain, labels)] = {"W": nets.W[e].cpu(), "agop": agops[e].cpu(), "M": M}
    settings = dict(
        D=D,
        n_train=n_train,
        xi=xi,
        width=width,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        activation=activation,
        n_top=n_top,
        rfm_train=rfm_train,
        rfm_iter=rfm_iter,
    )
    return EmergenceResult(rows, examples, settings)


def emergence_view(
    gain: float,
    width: int,
    *,
    seed: int = 0,
    D: int = 40,
    n_train: int = 4000,
    xi: tuple[float, float] = (1.0, 2.0),
    steps: int = 3000,
    lr: float = 3e-3,
    batch_size: int = 256,
    activation: str = "erf",
    n_top: int = 3,
    dtype: torch.dtype = torch.float32,
    device: Device | None = None,
) -> dict:
    r"""One network at one ``gain`` and ``width`` (what the explorer shows): its receptive
    fields ``W`` (rows, sorted by norm, largest first), the top ``n_top`` eigenvectors of its
    AGOP ``eigvecs`` and the IPR of each (``ipr_weights``, ``ipr_agop``), with the
    reference level ``3 / D`` of a vector of i.i.d. Gaussian entries (``ipr_random``).
    Trained on ``device`` (``None``: CUDA when available); the view is on the CPU.

    Examples:
        >>> view = emergence_view(3.0, 2, D=8, n_train=50, steps=5)
        >>> tuple(view["W"].shape), tuple(view["eigvecs"].shape), view["ipr_random"]
        ((2, 8), (3, 8), 0.375)
    """
    gain = check_real(gain, "gain", minimum=0)
    views = emergence_views(
        [gain], width, seed=seed, D=D, n_train=n_train, xi=xi, steps=steps, lr=lr,
        batch_size=batch_size, activation=activation, n_top=n_top, dtype=dtype, device=device,
    )  # fmt: skip
    return views[gain, width]


def emergence_views(
    gains: Sequence[float],
    width: int,
    *,
    seed: int = 0,
    D: int = 40,
    n_train: int = 4000,
    xi: tuple[float, float] = (1.0, 2.0),
    steps: int = 3000,
    lr: float = 3e-3,
    batch_size: int = 256,
    activation: str = "erf",
    n_top: int = 3,
    dtype: torch.dtype = torch.float32,
    device: Device | None = None,
) -> dict[tuple[float, int], dict]:
    r""":func:`emergence_view` at every gain of ``gains`` and one ``width``, the networks trained
    together as one batch (:func:`train_two_layer`, each with its own generator seeded by
    ``seed``: network ``e`` is the network :func:`emergence_view` trains at ``gains[e]``).
    Returns ``{(gain, width): view}``, what :func:`agop.widgets.emergence_explorer` selects
    from.

    Examples:
        >>> views = emergence_views([0.0, 3.0], 2, D=8, n_train=50, steps=5)
        >>> sorted(views), tuple(views[3.0, 2]["W"].shape)
        ([(0.0, 2), (3.0, 2)], (2, 8))
    """
    gains = check_reals(gains, "gains", minimum=0)
    if not gains:
        raise ValueError("gains must hold at least one gain")
    dev = default_device(device)
    data = [emergence_task(n_train, D, gain=g, xi=xi, seed=seed, dtype=dtype) for g in gains]
    X = torch.stack([x for x, _ in data]).to(dev)
    y = torch.stack([t for _, t in data]).to(dev)
    nets = train_two_layer(
        X,
        y,
        width=width,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        activation=activation,
        seed=[seed] * len(gains),
    )
    agops = two_layer_agop(nets, X).cpu()
    return {(g, width): view_of(g, nets.W[e].cpu(), agops[e], n_top) for e, g in enumerate(gains)}


def view_of(gain: float, W: torch.Tensor, agop: torch.Tensor, n_top: int = 3) -> dict:
    """The explorer's view (see :func:`emergence_view`) of a network already trained at
    ``gain``, from its first layer ``W`` (``(K, D)``) and its AGOP (``(D, D)``); for instance
    one of ``EmergenceResult.examples``, so that the explorer opens without training.

    Examples:
        >>> import torch
        >>> view = view_of(1.0, torch.eye(2, 4), torch.diag(torch.tensor([1.0, 3, 2, 0])), 2)
        >>> view["width"], view["eigvecs"].abs().argmax(1).tolist(), view["ipr_random"]
        (2, [1, 2], 0.75)
    """
    W = W[W.norm(dim=1).argsort(descending=True)]
    vecs = top_eigenvectors(agop, min(n_top, W.shape[1]))
    return {
        "gain": gain,
        "width": W.shape[0],
        "W": W,
        "eigvecs": vecs,
        "ipr_weights": ipr(W),
        "ipr_agop": ipr(vecs),
        "ipr_random": 3 / W.shape[1],
    }
