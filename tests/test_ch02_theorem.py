"""Theorem 1 checked numerically: one GD step from W_0 = 0 makes W^T W proportional to the
patch-AGOP at 0, with the closed forms W_1 = eta v u^T and AGOP_0 = P |v|^2 W_1^T W_1."""

import copy

import numpy as np
import pytest
import torch

from agop.patches import extract_patches
from agop_book import ch02_theorem as T
from agop_book.ch02_theorem import check_theorem

ETA = 0.05


def brute_agop(model, X):
    """Independent reference: patches as explicit variables, f differentiated w.r.t. each."""
    p = model.conv.kernel_size[0]
    patches = extract_patches(X, p).clone().requires_grad_(True)  # (n, P, q)
    z = patches @ T.first_layer(model).T  # (n, P, k)
    z = z.transpose(1, 2).reshape(X.shape[0], -1, *model.out_size)
    (g,) = torch.autograd.grad(model.g(z).sum(), patches)
    return torch.einsum("npq,npr->qr", g, g) / X.shape[0]


def images(n=40, c=2, size=(7, 9), seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, c, *size, generator=gen, dtype=dtype) + 0.3
    y = torch.randn(n, generator=gen, dtype=dtype).sign()
    return X, y


NETS = [
    dict(),
    dict(hidden=(4,)),
    dict(hidden=(3, 5), hidden_kernel_size=3, width=6),
    dict(kernel_size=5, activation="relu", relu_grad_at_zero=1.0),
]


@pytest.mark.parametrize("net", NETS)
def test_one_step_is_exactly_proportional(net):
    X, y = images()
    res = T.check_theorem(X, y, eta=ETA, **net)
    model = T.TheoremNet(X.shape[1], X.shape[2:], dtype=X.dtype, **net)
    v = T.closed_form_v(model)
    p = model.conv.kernel_size[0]
    # v_j = dg/dz_j(0) is the same closed-form vector at every position (circular padding)
    torch.testing.assert_close(
        T.derivative_at_zero(model), v.expand(model.positions, -1), rtol=1e-13, atol=0
    )
    # W_1 = eta v u^T, u = (1/n) sum_i y_i sum_j x_i[j], u computed here by brute force
    u = torch.einsum("n,npq->q", y, extract_patches(X, p)) / len(y)
    torch.testing.assert_close(res.W1, ETA * torch.outer(v, u), rtol=1e-12, atol=0)
    torch.testing.assert_close(T.closed_form_w1(X, y, v, ETA, p), res.W1, rtol=1e-12, atol=0)
    # AGOP_0 = P eta^2 |v|^4 u u^T, and its ratio to W_1^T W_1 is P |v|^2
    P = model.positions
    torch.testing.assert_close(
        res.agop0, P * ETA**2 * v.norm() ** 4 * torch.outer(u, u), rtol=1e-11, atol=0
    )
    assert res.at_zero["residual"] <= 1e-10
    assert res.at_zero["ratio"] == pytest.approx(P * float(v.norm()) ** 2, rel=1e-10)
    assert res.at_zero["pearson"] == pytest.approx(1.0, abs=1e-12)


def test_agop_at_zero_matches_explicit_patch_reference():
    X, y = images(n=12)
    model = T.train_gd(
        T.TheoremNet(2, (7, 9), hidden=(3,), init_scale=0.3, upper_noise=1.0, dtype=torch.float64),
        X,
        y,
        ETA,
        steps=3,
    )
    x0 = torch.zeros(1, 2, 7, 9, dtype=torch.float64)
    torch.testing.assert_close(T.agop_at_zero(model), brute_agop(model, x0), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(
        T.agop_on_data(model, X), brute_agop(model, X), rtol=1e-10, atol=1e-15
    )


def test_agop_at_zero_is_WT_V_W_for_any_network():
    """At x = 0 every z_j = W 0 = 0, so AGOP_0 = W^T (sum_j v_j v_j^T) W whatever W is."""
    X, y = images(n=12)
    model = T.TheoremNet(
        2,
        (7, 9),
        hidden=(3,),
        init_scale=0.5,
        upper_noise=2.0,
        upper_padding_mode="zeros",
        dtype=torch.float64,
        seed=3,
    )
    model = T.train_gd(model, X, y, ETA, steps=4, train="all")
    W, V = T.first_layer(model), T.derivative_at_zero(model)
    torch.testing.assert_close(T.agop_at_zero(model), W.T @ V.T @ V @ W, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "relaxed",
    [
        dict(upper_noise=3.0),
        dict(init_scale=0.1),
        dict(upper_padding_mode="zeros", upper_noise=2.0, hidden=(3,)),
    ],
)
def test_relaxing_an_assumption_breaks_exact_proportionality(relaxed):
    X, y = images()
    res = T.check_theorem(X, y, eta=ETA, **relaxed)
    assert res.at_zero["residual"] > 1e-2
    assert res.at_zero["pearson"] < 1 - 1e-4


def test_zero_padding_keeps_proportionality_but_not_the_plain_closed_form():
    """Zero padding above the first layer makes |v_j| depend on j, but the v_j stay parallel
    (channels are interchangeable): W_1 is still rank one and proportional to the AGOP,
    with u weighted by position instead of the plain patch sum."""
    X, y = images()
    net = dict(hidden=(3,), upper_padding_mode="zeros")
    res = T.check_theorem(X, y, eta=ETA, **net)
    V = T.derivative_at_zero(T.TheoremNet(2, (7, 9), dtype=X.dtype, **net))
    assert (V.norm(dim=1).max() - V.norm(dim=1).min()) > 1e-3 * V.norm(dim=1).max()
    assert res.at_zero["residual"] <= 1e-10
    plain = T.closed_form_w1(X, y, V[0], ETA, 3)
    assert (plain - res.W1).norm() > 1e-3 * res.W1.norm()


def test_a_readout_bias_only_shifts_the_labels():
    """g(0) = b != 0: W_1 = eta v u~^T with u~ = (1/n) sum_i (y_i - b) sum_j x_i[j]."""
    X, y = images()
    res = T.check_theorem(X, y, eta=ETA, readout_bias=0.7)
    v = T.closed_form_v(T.TheoremNet(2, (7, 9), dtype=X.dtype))
    torch.testing.assert_close(
        res.W1, T.closed_form_w1(X, y, v, ETA, 3, g0=0.7), rtol=1e-12, atol=0
    )
    assert (res.W1 - T.closed_form_w1(X, y, v, ETA, 3)).norm() > 0.1 * res.W1.norm()
    assert res.at_zero["residual"] <= 1e-10


@pytest.mark.parametrize(
    "kw",
    [
        dict(steps=20),
        dict(steps=15, batch_size=7),
        dict(steps=10, train="all", activation="relu", relu_grad_at_zero=1.0),
    ],
)
def test_channel_symmetry_keeps_proportionality_for_many_steps(kw):
    """From W_0 = 0 with constant upper layers all k filters stay equal (W_t = 1 w_t^T), so
    CNFM and AGOP (at 0 and over the data) stay multiples of w_t w_t^T."""
    X, y = images()
    res = T.check_theorem(X, y, eta=ETA, **kw)
    assert torch.linalg.matrix_rank(res.W1, rtol=1e-10) == 1
    assert res.at_zero["residual"] <= 1e-10
    assert res.on_data["residual"] <= 1e-10


def test_gd_full_batch_equals_sgd_with_batch_n_and_moves_downhill():
    X, y = images()
    model = T.TheoremNet(2, (7, 9), init_scale=0.1, dtype=torch.float64)
    a = T.train_gd(model, X, y, ETA, steps=3)
    b = T.train_gd(model, X, y, ETA, steps=3, batch_size=len(y))
    torch.testing.assert_close(T.first_layer(a), T.first_layer(b), rtol=1e-13, atol=0)
    assert T.squared_loss(a, X, y) < T.squared_loss(model, X, y)
    # the step is W - eta grad L, L = (1/2n) sum (f - y)^2: compare with a central difference
    W = model.conv.weight
    E = torch.zeros_like(W)
    E[1, 0, 2, 1] = 1e-6
    with torch.no_grad():
        W += E
        lp = T.squared_loss(model, X, y)
        W -= 2 * E
        lm = T.squared_loss(model, X, y)
        W += E
    one = T.train_gd(model, X, y, ETA, steps=1)
    step = (model.conv.weight - one.conv.weight).detach()[1, 0, 2, 1] / ETA
    assert float(step) == pytest.approx(float((lp - lm) / 2e-6), rel=1e-6)


def test_relu_with_torch_convention_does_not_move_from_zero():
    X, y = images()
    with pytest.raises(ValueError, match="still 0"):
        T.check_theorem(X, y, activation="relu")
    res = T.check_theorem(X, y, activation="relu", init_scale=0.1)
    assert res.at_zero is None  # relu'(0) = 0 kills every gradient at x = 0
    assert res.on_data["residual"] > 1e-2


def test_relax_rows_and_float32():
    X, y = images(dtype=torch.float32)
    rows = T.relax(
        X,
        y,
        {
            "scale": ("init_scale", (0.0, 0.3), {}),
            "relu0": ("init_scale", (0.0,), {"activation": "relu"}),
        },
        eta=ETA,
    )
    assert [r["moved"] for r in rows] == [True, True, False]
    assert rows[0]["residual0"] < 1e-5 and rows[0]["init_to_update"] == 0
    assert rows[1]["residual0"] > 1e-2
    res = T.check_theorem(X, y, eta=ETA)
    assert res.W1.dtype == torch.float32 and res.agop0.dtype == torch.float32


def test_bad_input_raises_clear_errors():
    X, y = images()
    with pytest.raises(ValueError, match="activation"):
        T.TheoremNet(2, 7, activation="sigmoid")
    with pytest.raises(ValueError, match="y must have shape"):
        T.check_theorem(X, y[:-1])
    with pytest.raises(ValueError, match="eta"):
        T.train_gd(T.TheoremNet(2, (7, 9)), X.float(), y.float(), eta=-1.0)
    with pytest.raises(ValueError, match="constant upper layers"):
        T.closed_form_v(T.TheoremNet(2, 7, upper_noise=0.1))
    with pytest.raises(ValueError, match="zero matrix"):
        T.proportionality(torch.eye(3), torch.zeros(3, 3))


@pytest.mark.parametrize("scale, eta", [(255.0, 0.02), (1.0, 1e6)])
def test_saturated_theorem_check_says_why(scale, eta):
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


# Held-out style bugs


def test_label_weighted_patch_sum_is_the_mean_over_all_images_whatever_the_chunks():
    """``u = (1/n) sum_i y_i sum_j x_i[j]`` written as a loop over images and positions,
    against chunks that do not divide ``n`` (7 images in chunks of 3: the last holds one)."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(7, 2, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randn(7, generator=g, dtype=torch.float64)
    k = 3
    expected = torch.zeros(2 * k * k, dtype=torch.float64)
    for i in range(7):
        for r in range(4 - k + 1):
            for c in range(4 - k + 1):
                expected += y[i] * X[i, :, r : r + k, c : c + k].reshape(-1)
    expected /= 7
    for chunk_size in (3, 7, 100):
        torch.testing.assert_close(
            T.label_weighted_patch_sum(X, y, k, chunk_size=chunk_size),
            expected,
            rtol=1e-12,
            atol=1e-12,
        )


def test_minibatch_gd_draws_a_fresh_order_each_epoch_from_one_generator():
    """``train_gd`` with minibatches against the procedure written out: one generator seeded
    with ``seed``, a fresh ``randperm`` each epoch, consecutive batches of it, a plain
    gradient step on each batch's loss; two epochs of two batches (the second epoch's order
    is not the first's)."""
    g = torch.Generator().manual_seed(1)
    X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    net = T.TheoremNet(1, 5, width=3, hidden=(3,), init_scale=0.1, dtype=torch.float64)
    trained = T.train_gd(net, X, y, eta=0.3, steps=4, batch_size=3, seed=5)

    W = net.conv.weight.detach().clone()
    gen = torch.Generator().manual_seed(5)
    orders = [torch.randperm(6, generator=gen) for _ in range(2)]
    assert set(orders[0][:3].tolist()) != set(orders[1][:3].tolist())
    ref = copy.deepcopy(net)
    for order in orders:
        for idx in order.split(3):
            with torch.no_grad():
                ref.conv.weight.copy_(W)
            loss = 0.5 * ((ref(X[idx])[:, 0] - y[idx]) ** 2).mean()
            (grad,) = torch.autograd.grad(loss, ref.conv.weight)
            W = W - 0.3 * grad
    torch.testing.assert_close(trained.conv.weight.detach(), W, rtol=1e-12, atol=1e-12)


# Hostile inputs


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: T.closed_form_w1(X, y, torch.ones(2, dtype=X.dtype), float("nan"), 3), "eta"),
        (
            lambda X, y: T.closed_form_w1(
                X, y, torch.ones(2, dtype=X.dtype), 0.1, 3, g0=float("inf")
            ),
            "g0",
        ),
        (lambda X, y: T.label_weighted_patch_sum(X, y, 3, chunk_size=0), "chunk_size"),
        (lambda X, y: T.Activation("foo"), "name must be one of 'tanh', 'relu'"),
        (lambda X, y: T.Activation("relu", float("nan")), "relu_grad_at_zero must be a finite"),
        (lambda X, y: T.TheoremNet(1, 6, activation="foo"), "activation must be one of"),
        (lambda X, y: T.TheoremNet(1, 6, relu_grad_at_zero=None), "relu_grad_at_zero must be"),
        (lambda X, y: T.train_gd(None, X, y, 0.1), "model must be a TheoremNet"),
        (lambda X, y: T.relax(X, y, {}), "relaxations must hold at least one"),
        (lambda X, y: T.relax(X, y, [("width", [1], {})]), "relaxations must be a dict"),
        (
            lambda X, y: T.relax(X, y, {"a": ("width", [], {})}),
            r"relaxations\['a'\]: the values are",
        ),
        (
            lambda X, y: T.relax(X, y, {"a": ("wdth", [1], {})}),
            r"relaxations\['a'\]: 'wdth' is not",
        ),
        (lambda X, y: T.relax(X, y, {"a": ("width", [1])}), r"relaxations\['a'\] must be a triple"),
        (
            lambda X, y: T.relax(X, y, {"a": ("width", [1], {"bogus": 1})}),
            r"relaxations\['a'\]: 'bogus'",
        ),
        (lambda X, y: T.relax(X, y, {"a": ("width", [1], [])}), r"relaxations\['a'\]: the fixed"),
        (
            lambda X, y: T.relax(X, y, {"a": ("width", 3, {})}),
            r"relaxations\['a'\]: the values must",
        ),
        (lambda X, y: T.relax(X, y, {"a": ("width", [2], {})}, bogus=1), "bogus: not a keyword"),
        (
            lambda X, y: T.relax(X, y, {"a": ("in_channels", [2], {})}),
            r"relaxations\['a'\]: 'in_ch",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, match):
    X = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    y = torch.randn(4, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match=f"^{match}"):
        call(X, y)


# Hostile inputs: the theorem's figures and explorer


def _check():
    X = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return X, [1, -1, 1, -1, 1, -1]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda X, y: T.plot_theorem_pair({"cnfm": X}), TypeError, "^check must be a TheoremCheck"),
        (
            lambda X, y: T.plot_theorem_pair(check_theorem(X, y, width=4), kernel_size=4),
            ValueError,
            "^kernel_size must fit",
        ),
        (
            lambda X, y: T.plot_theorem_pair(check_theorem(X, y, width=4), kernel_size=-3),
            ValueError,
            "^kernel_size must be a positive",
        ),
        (lambda X, y: T.plot_relaxations([]), ValueError, "^rows must hold"),
        (lambda X, y: T.plot_relaxations([{"setting": "a"}]), ValueError, r"^rows\[0\] has no key"),
        (
            lambda X, y: T.plot_relaxations(
                [{"setting": "a", "parameter": "eta", "value": 1, "pearson0": float("nan")}]
            ),
            ValueError,
            r"^rows\[0\]\['pearson0'\] must be a finite",
        ),
        (
            lambda X, y: T.plot_relaxations(
                [{"setting": "a", "parameter": "eta", "value": 1}], settings=["b"]
            ),
            ValueError,
            "^settings: 'b' is not one of the settings of rows",
        ),
        (lambda X, y: T.theorem_explorer(None, y, kernel_size=3), TypeError, "^X must be"),
        (lambda X, y: T.theorem_explorer(X, y[:3], kernel_size=3), ValueError, "^y must have"),
        (lambda X, y: T.theorem_explorer(X, y, kernel_size=0), ValueError, "^kernel_size must"),
        (lambda X, y: T.theorem_explorer(X, y, kernel_size=3, wdth=4), TypeError, "^net: 'wdth'"),
        (lambda X, y: T.theorem_explorer(X, y, kernel_size=3, eta=0.1), ValueError, "^net: 'eta'"),
    ],
)
def test_figures_and_explorer_name_a_hostile_argument(call, error, match):
    import matplotlib.pyplot as plt

    X, y = _check()
    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        call(X, y)
    assert plt.get_fignums() == before


# Held-out style bugs, round 3


def test_relax_init_to_update_is_the_start_against_what_training_added():
    """``init_to_update = |W_0|_F / |W_1 - W_0|_F``, recomputed from a network built and
    trained by hand with the same seed and settings (a start of scale 0.3, five steps: the
    update is neither the start nor the trained layer)."""
    X, y = images(n=12, size=(5, 6))
    rows = T.relax(X, y, {"scale": ("init_scale", (0.3,), {"steps": 5})}, eta=ETA, seed=3)
    net = T.TheoremNet(2, (5, 6), init_scale=0.3, seed=3, dtype=torch.float64)
    W0 = T.first_layer(net).clone()
    W1 = T.first_layer(T.train_gd(net, X, y, ETA, steps=5, seed=3))
    expected = float(W0.norm() / (W1 - W0).norm())
    assert float(W0.norm() / W1.norm()) != pytest.approx(expected, rel=1e-3)  # tells them apart
    assert rows[0]["init_to_update"] == pytest.approx(expected, rel=1e-12)


# Held-out style bugs, round 4


def test_proportionality_of_matrices_that_are_not_multiples_is_the_definition():
    """A = diag(4, 1, 0), B = I: the ratio is tr A / tr B = 5/3 (not a ratio of norms,
    sqrt(17/3)), the residual |A - r B|_F / |A|_F and the similarities written out."""
    A = torch.diag(torch.tensor([4.0, 1.0, 0.0], dtype=torch.float64))
    B = torch.eye(3, dtype=torch.float64)
    out = T.proportionality(A, B)
    r = 5.0 / 3.0
    residual = ((4 - r) ** 2 + (1 - r) ** 2 + r**2) ** 0.5 / 17**0.5
    a, b = A.flatten() - A.mean(), B.flatten() - B.mean()
    assert out["ratio"] == pytest.approx(r, rel=1e-12)
    assert out["residual"] == pytest.approx(residual, rel=1e-12)
    assert out["pearson"] == pytest.approx(float(a @ b / (a.norm() * b.norm())), rel=1e-12)
    assert out["cosine"] == pytest.approx(5 / (17**0.5 * 3**0.5), rel=1e-12)


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(6, 1, 5, 5, generator=g, dtype=torch.float64)
    return X, torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(readout_bias=float("nan")), ValueError, r"^readout_bias must be a finite number"),
        (dict(dtype=torch.int64), ValueError, r"^dtype must be one of"),
        (dict(dtype=torch.complex128), ValueError, r"^dtype must be one of"),
        (dict(width=10**7, hidden=(10**7,)), ValueError, r"^in_channels, width, .*GiB"),
    ],
)
def test_round5_theorem_net_names_a_bad_setting(options, error, match):
    # a NaN readout bias used to give a network whose every output is NaN, a complex dtype a
    # complex network, an integer one torch's message, and 10**14 weights the allocator's
    with pytest.raises(error, match=match):
        T.TheoremNet(1, 5, **{"width": 4, "hidden": (4,), **options})


def test_round5_theorem_net_keeps_a_real_readout_bias():
    net = T.TheoremNet(1, 5, width=4, readout_bias=0.25, dtype=torch.float64)
    X, _ = _data()
    assert net(X).flatten().tolist() == [0.25] * 6  # W_0 = 0: f = g(0) = the bias


def test_round5_train_gd_names_steps_beyond_any_run_and_images_of_another_size():
    X, y = _data()
    net = T.TheoremNet(1, 5, width=4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^steps must be .*<= 2147483647"):
        T.train_gd(net, X, y, 0.1, steps=10**12)  # used to loop for days
    big = torch.rand(6, 1, 7, 7, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^X must hold images of shape \(1, 5, 5\)"):
        T.train_gd(net, big, y, 0.1)  # used to be torch's "mat1 and mat2 shapes" message


@pytest.mark.parametrize("A_zero", [True, False])
def test_round5_proportionality_names_the_zero_matrix_first(A_zero):
    eye, zero = torch.eye(2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)
    A, B = (zero, eye) if A_zero else (eye, zero)
    with pytest.raises(ValueError, match=r"^A:" if A_zero else r"^B:"):
        T.proportionality(A, B)


# Hostile inputs, round 6


def test_check_theorem_names_the_argument_that_leaves_the_first_layer_at_zero():
    """With ``y = 0`` no gradient moves ``W``; with ``steps=0`` and ``W_0 = 0`` nothing trains:
    each is refused by the argument's name before any training. ``steps=0`` from a random
    ``W_0`` is a valid comparison at initialisation."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(6, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="^y must hold a non-zero target"):
        check_theorem(X, torch.zeros(6, dtype=torch.float64), width=2, hidden=(2,))
    with pytest.raises(ValueError, match="^steps must be at least 1 when W_0 = 0"):
        check_theorem(X, y, steps=0, width=2, hidden=(2,))
    result = check_theorem(X, y, steps=0, init_scale=0.1, width=2, hidden=(2,))
    torch.testing.assert_close(result.W1, result.W0, rtol=0, atol=0)


def test_check_theorem_names_a_keyword_that_is_not_a_network_setting():
    """``**net`` goes to ``TheoremNet``: an unknown keyword was Python's own TypeError naming
    ``__init__``; ``hidden=4`` failed iterating an int; ``on_data=1`` was read as true."""
    X = torch.rand(6, 1, 5, 5, dtype=torch.float64)
    y = [1.0, -1.0] * 3
    with pytest.raises(TypeError, match="^net: 'foo' is not a keyword of TheoremNet"):
        check_theorem(X, y, width=2, foo=1)
    with pytest.raises(TypeError, match="^hidden must be a sequence of widths"):
        check_theorem(X, y, width=2, hidden=4)
    with pytest.raises(TypeError, match="^on_data"):
        check_theorem(X, y, width=2, on_data=1)


def test_check_theorem_of_half_precision_images_computes_in_the_default_dtype():
    """A float16 ``X`` set ``dtype=float16``, which ``TheoremNet`` refuses under the name
    ``dtype`` (an argument not given). It now runs as the same images in float32."""
    X = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(0)).half()
    y = [1.0, -1.0] * 3
    half = check_theorem(X, y, width=2, hidden=(2,))
    ref = check_theorem(X.float(), y, width=2, hidden=(2,))
    assert half.W1.dtype == torch.float32
    torch.testing.assert_close(half.W1, ref.W1, rtol=0, atol=0)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda net, X, y: T.first_layer(torch.nn.Conv2d(1, 2, 3)),
            TypeError,
            "^model must be a TheoremNet",
        ),
        (lambda net, X, y: T.derivative_at_zero(None), TypeError, "^model must be a TheoremNet"),
        (
            lambda net, X, y: T.train_gd(net.to("meta"), X, y, eta=0.1),
            ValueError,
            r"^model\.conv\.weight is on the 'meta'",
        ),
        (
            lambda net, X, y: T.squared_loss(net, X, y[:2]),
            ValueError,
            r"^y must have shape \(n,\) = \(6,\)",
        ),
        (
            lambda net, X, y: T.proportionality(torch.ones(3), torch.ones(3)),
            ValueError,
            "^A must be",
        ),
        (
            lambda net, X, y: T.proportionality(torch.ones(3, 3), torch.eye(3)),
            ValueError,
            "^A is constant",
        ),
        (
            lambda net, X, y: T.closed_form_w1(
                X, y, torch.full((2,), float("nan"), dtype=torch.float64), 0.1, 3
            ),
            ValueError,
            "^v",
        ),
    ],
)
def test_theorem_helpers_name_their_own_arguments(call, error, match):
    """Each failed inside: an AttributeError (``model.conv``), a broadcast error, a trace of a
    vector, a correlation naming its own ``A``, a NaN ``W_1`` from a NaN ``v``, or (``meta``
    weights) a trained network with no values returned silently."""
    net = T.TheoremNet(1, 5, width=2, hidden=(2,), dtype=torch.float64)
    X = torch.rand(6, 1, 5, 5, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0] * 3, dtype=torch.float64)
    with pytest.raises(error, match=match):
        call(net, X, y)


# Held-out style bugs, round 5


def test_check_theorem_trains_with_its_own_seed():
    """``seed`` seeds both the network and the minibatch order: with minibatches, the first
    layer of ``check_theorem(seed=s)`` is the one :func:`train_gd` gives from
    ``TheoremNet(seed=s)`` with ``seed=s``, and two seeds give two different first layers."""
    X, y = images(n=8, c=1, size=(5, 5))
    kw = dict(width=3, init_scale=0.1)
    layers = []
    for seed in (0, 3):
        result = check_theorem(X, y, eta=ETA, steps=3, batch_size=3, seed=seed, **kw)
        net = T.TheoremNet(1, (5, 5), seed=seed, dtype=torch.float64, **kw)
        trained = T.train_gd(net, X, y, ETA, steps=3, batch_size=3, seed=seed)
        torch.testing.assert_close(result.W1, T.first_layer(trained), rtol=0, atol=0)
        layers.append(result.W1)
    assert not torch.allclose(layers[0], layers[1])


def test_relax_fixed_keywords_override_the_base_ones():
    """A relaxation's fixed keywords come after ``base`` (and the relaxed value after both):
    a base ``init_scale`` of 1e-3 and a fixed one of 0.3 run at 0.3, as ``check_theorem``
    called with 0.3 shows."""
    X, y = images(n=6, c=1, size=(5, 5))
    (row,) = T.relax(
        X, y, {"steps": ("steps", (2,), {"init_scale": 0.3})}, eta=ETA, init_scale=1e-3, width=3
    )
    direct = check_theorem(X, y, eta=ETA, steps=2, init_scale=0.3, width=3)
    assert row["pearson0"] == direct.at_zero["pearson"]
    assert row["residual_data"] == direct.on_data["residual"]
    expected = float(direct.W0.norm() / (direct.W1 - direct.W0).norm())
    assert row["init_to_update"] == expected


# Mutation testing, stop 35: the figures and the explorer


def _planted_check(cnfm, agop0, agop_data=None, at_zero=None, on_data=None):
    """A TheoremCheck holding planted matrices and proportionality numbers (the figure reads
    only these), so that what it draws can be checked against them."""
    z = torch.zeros(1, cnfm.shape[0], dtype=torch.float64)
    return T.TheoremCheck(
        W0=z,
        W1=z,
        cnfm=cnfm,
        agop0=agop0,
        agop_data=agop_data,
        v=z,
        at_zero=at_zero,
        on_data=on_data,
    )


def _image(ax):
    (im,) = ax.get_images()
    return im.get_array().data, im.get_clim()


def test_theorem_pair_draws_each_matrix_at_unit_scale_and_names_its_numbers():
    """Panels in order: W^T W, the AGOP at 0, the AGOP over the data, the filter; each matrix
    divided by its largest absolute entry (a largest entry below 1 too) on the colour scale
    [-1, 1]; the titles carry the proportionality numbers given; no ticks. The filter is the
    unit top eigenvector of W^T W as a p x p image, signed to a positive sum, on a colour scale
    symmetric about 0 that its largest entry reaches."""
    import matplotlib.pyplot as plt
    import numpy as np

    u = torch.tensor([-3.0, 1, 1, 1, 1, 1, 1, 1, 1], dtype=torch.float64)
    cnfm = 0.01 * torch.outer(u, u)  # largest entry 0.09; top eigenvector +-u/|u|
    assert float(torch.linalg.eigh(cnfm)[1][:, -1].sum()) < 0  # eigh's sign needs the flip
    w = torch.arange(9, dtype=torch.float64) - 6
    agop0 = -7.0 * torch.outer(w, w)  # largest entry -252
    agop_data = torch.diag(torch.arange(1.0, 10.0, dtype=torch.float64)) - 0.5
    check = _planted_check(
        cnfm,
        agop0,
        agop_data,
        at_zero={"pearson": 0.123456789, "residual": 3.21e-5},
        on_data={"pearson": -0.5, "residual": 0.75},
    )
    fig = T.plot_theorem_pair(check, kernel_size=3)
    axes = fig.axes
    assert len(axes) == 4
    for ax, A in zip(axes, (cnfm, agop0, agop_data), strict=False):
        a, clim = _image(ax)
        np.testing.assert_allclose(a, (A / A.abs().max()).numpy(), rtol=1e-15, atol=0)
        assert clim == (-1, 1)
    assert [ax.get_title() for ax in axes] == [
        "CNFM $W^\\top W$",
        "AGOP at $x=0$\npearson 0.123457, residual 3.2e-05",
        "AGOP over the data\npearson -0.500000, residual 7.5e-01",
        "top eigenvector of $W^\\top W$\n(the learned filter)",
    ]
    top = (u / u.norm()).reshape(3, 3).numpy()  # sum 5 / |u| > 0
    a, clim = _image(axes[3])
    np.testing.assert_allclose(a, top, rtol=1e-12, atol=1e-15)
    assert clim == pytest.approx((-3 / float(u.norm()), 3 / float(u.norm())), rel=1e-12)
    assert all(len(ax.get_xticks()) == len(ax.get_yticks()) == 0 for ax in axes)
    plt.close(fig)


def test_theorem_pair_panels_follow_the_check_and_the_kernel_size():
    """No AGOP over the data: no panel for it. No kernel_size, or one that fits W^T W only
    with several channels: no filter panel. A zero AGOP at 0 is drawn as zeros and its title
    says so. A top eigenvector of sum exactly 0 is drawn as it is. A figure given is drawn on
    and returned; a kernel_size whose square does not divide the side is refused."""
    import matplotlib.pyplot as plt
    import numpy as np

    e = torch.tensor([1.0, -1, 0, 0, 0, 0, 0, 0, 0], dtype=torch.float64)
    cnfm = torch.outer(e, e)  # top eigenvector +-e / sqrt(2), of sum exactly 0
    zero = torch.zeros(9, 9, dtype=torch.float64)
    check = _planted_check(cnfm, zero)
    fig = plt.figure()
    assert T.plot_theorem_pair(check, kernel_size=3, fig=fig) is fig
    assert [ax.get_title() for ax in fig.axes] == [
        "CNFM $W^\\top W$",
        "AGOP at $x=0$\n(zero matrix)",
        "top eigenvector of $W^\\top W$\n(the learned filter)",
    ]
    a, _ = _image(fig.axes[1])
    np.testing.assert_array_equal(a, np.zeros((9, 9)))
    a, clim = _image(fig.axes[2])
    half = (e / 2**0.5).reshape(3, 3).numpy()
    assert np.allclose(a, half, rtol=0, atol=1e-15) or np.allclose(a, -half, rtol=0, atol=1e-15)
    assert clim == pytest.approx((-(0.5**0.5), 0.5**0.5), rel=1e-12)
    v = torch.tensor([3.0, 1, 1, 1, 1, 1, 1, 1, -1], dtype=torch.float64)  # least entry -1
    T.plot_theorem_pair(_planted_check(torch.outer(v, v), zero), kernel_size=3, fig=fig)
    a, clim = _image(fig.axes[2])
    np.testing.assert_allclose(a, (v / v.norm()).reshape(3, 3).numpy(), rtol=1e-12, atol=1e-15)
    assert clim == pytest.approx((-3 / float(v.norm()), 3 / float(v.norm())), rel=1e-12)
    T.plot_theorem_pair(check, fig=fig)
    assert len(fig.axes) == 2
    plt.close(fig)
    two = torch.eye(18, dtype=torch.float64)  # two channels of 3 x 3 patches
    fig = T.plot_theorem_pair(
        _planted_check(
            two, two, two, {"pearson": 1.0, "residual": 0.0}, {"pearson": 1.0, "residual": 0.0}
        ),
        kernel_size=3,
    )
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="^kernel_size must fit the check's W\\^T W of side 9"):
        T.plot_theorem_pair(check, kernel_size=9)  # 9 % 9 == 0, but 9 % 81 != 0
    with pytest.raises(TypeError, match="^fig must be None or a matplotlib Figure, got str"):
        T.plot_theorem_pair(check, fig="figure")


def _relaxation_rows():
    row = dict.fromkeys(("pearson0", "residual0", "pearson_data", "residual_data"))

    def r(setting, parameter, value, p0, r0, pd, rd, moved=True):
        return {
            **row,
            "setting": setting,
            "parameter": parameter,
            "value": value,
            "pearson0": p0,
            "residual0": r0,
            "pearson_data": pd,
            "residual_data": rd,
            "moved": moved,
        }

    return [
        r("step", "eta", 0.1, 0.9, 0.2, 0.8, 0.3),
        r("step", "eta", 0.2, -0.5, 0.0, 0.7, 0.4),
        r("step", "eta", 0.3, 0.1, 0.5, 0.6, 0.6, moved=False),  # left out
        r("relu", "eta", 0.1, None, 0.25, 0.5, None),  # no correlation at 0, no residual on data
        r("scale", "init_scale", 0.0, 1.0, 1e-3, 0.9, 0.05),
        r("noise", "upper_noise", 0.5, 0.95, 0.01, 0.85, 0.1),
        r("steps", "steps", 3, 0.99, 0.02, 0.9, 0.2),
    ]


def _lines(ax):
    return [
        (ln.get_label(), list(ln.get_xdata()), list(ln.get_ydata()), ln.get_linestyle())
        for ln in ax.get_lines()
    ]


def test_relaxations_draw_each_settings_moved_points_in_its_parameters_column():
    """One column per parameter (in the order of the rows), correlation on top, residual below;
    in each, one solid line at x = 0 and one dashed over the data per setting of that parameter,
    through the moved rows only, leaving out each undefined point on its own; a residual of 0
    is drawn at 1e-17 on the log scale, a negative correlation as it is. The swept scales are
    symmetric-log with their linear thresholds; axis labels and legends name what is drawn."""
    import matplotlib.pyplot as plt

    fig = T.plot_relaxations(_relaxation_rows())
    axes = fig.axes
    assert len(axes) == 8
    top, bottom = axes[:4], axes[4:]
    assert _lines(top[0]) == [
        ("step (x = 0)", [0.1, 0.2], [0.9, -0.5], "-"),
        ("step (data)", [0.1, 0.2], [0.8, 0.7], "--"),
        ("relu (data)", [0.1], [0.5], "--"),
    ]
    assert _lines(bottom[0]) == [
        ("step (x = 0)", [0.1, 0.2], [0.2, 1e-17], "-"),
        ("step (data)", [0.1, 0.2], [0.3, 0.4], "--"),
        ("relu (x = 0)", [0.1], [0.25], "-"),
    ]
    assert _lines(top[1]) == [
        ("scale (x = 0)", [0.0], [1.0], "-"),
        ("scale (data)", [0.0], [0.9], "--"),
    ]
    assert _lines(bottom[1]) == [
        ("scale (x = 0)", [0.0], [1e-3], "-"),
        ("scale (data)", [0.0], [0.05], "--"),
    ]
    assert _lines(top[2])[0] == ("noise (x = 0)", [0.5], [0.95], "-")
    assert _lines(bottom[3])[1] == ("steps (data)", [3], [0.2], "--")
    assert [len(ax.get_lines()) for ax in axes] == [3, 2, 2, 2, 3, 2, 2, 2]
    for col, (param, linthresh) in enumerate(
        [("eta", None), ("init_scale", 1e-4), ("upper_noise", 1e-2), ("steps", 1)]
    ):
        for ax in (top[col], bottom[col]):
            assert ax.get_xscale() == ("linear" if linthresh is None else "symlog")
            if linthresh is not None:
                assert ax.xaxis.get_transform().linthresh == linthresh
        assert top[col].get_shared_x_axes().joined(top[col], bottom[col])
        assert (top[col].get_yscale(), bottom[col].get_yscale()) == ("linear", "log")
        assert (top[col].get_xlabel(), bottom[col].get_xlabel()) == ("", param)
        assert top[col].get_legend() is None
        legend = [t.get_text() for t in bottom[col].get_legend().get_texts()]
        assert legend == [line[0] for line in _lines(bottom[col])]
    assert [ax.get_ylabel() for ax in axes] == ["Pearson correlation", "", "", ""] + [
        "residual $|A - cB|_F / |A|_F$",
        "",
        "",
        "",
    ]
    plt.close(fig)


def test_relaxations_draw_only_the_settings_asked_for_on_a_figure_given():
    """``settings`` keeps those settings and the columns of their parameters only; a figure
    given is drawn on and returned."""
    import matplotlib.pyplot as plt

    fig = plt.figure()
    assert T.plot_relaxations(_relaxation_rows(), fig=fig, settings=["scale", "step"]) is fig
    assert len(fig.axes) == 4
    assert [ax.get_xlabel() for ax in fig.axes[2:]] == ["eta", "init_scale"]
    assert [line[0] for line in _lines(fig.axes[0])] == ["step (x = 0)", "step (data)"]
    assert [line[0] for line in _lines(fig.axes[3])] == ["scale (x = 0)", "scale (data)"]
    T.plot_relaxations(_relaxation_rows(), fig=fig, settings=["noise"])  # one column
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "upper_noise"]
    plt.close(fig)


@pytest.mark.parametrize("key", ["pearson0", "residual0", "pearson_data", "residual_data"])
def test_relaxations_refuse_a_number_that_is_not_finite_by_its_key(key):
    rows = _relaxation_rows()
    rows[1][key] = float("inf")
    with pytest.raises(ValueError, match=rf"^rows\[1\]\['{key}'\] must be a finite"):
        T.plot_relaxations(rows)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"settings": "step"}, TypeError, "^settings must be a list of setting names, got str$"),
        ({"fig": "figure"}, TypeError, "^fig must be None or a matplotlib Figure, got str$"),
    ],
)
def test_relaxations_name_a_bad_settings_or_figure(kwargs, error, match):
    with pytest.raises(error, match=match):
        T.plot_relaxations(_relaxation_rows(), **kwargs)


def _explorer_data():
    X = torch.rand(6, 1, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return X, [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]


def _explorer_controls(box):
    return {w.description: w for row in box.children[:2] for w in row.children}


def test_theorem_explorer_controls_layout_and_opening_values(monkeypatch):
    """Two rows of controls (step, W_0 scale, upper noise; steps, phi) over the output; each
    control's range and opening value (the theorem's: W_0 = 0, constant upper layers, one
    step of tanh), none of the sliders updating while dragged. Every value a control sets
    is refused in ``net``; without ``kernel_size`` the filters are 5 x 5."""
    ipywidgets = pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    X, y = _explorer_data()
    box = T.theorem_explorer(X, y, kernel_size=2, width=3)
    assert len(box.children) == 3 and isinstance(box.children[2], ipywidgets.Output)
    assert [[w.description for w in row.children] for row in box.children[:2]] == [
        ["step eta", "W_0 scale", "upper noise"],
        ["steps", "phi"],
    ]
    c = _explorer_controls(box)
    eta, scale, noise, steps, phi = c.values()
    assert eta.value == pytest.approx(0.02, rel=1e-12)
    assert (eta.base, eta.min, eta.max) == (10, -4, -0.5)
    assert scale.options == (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0) and scale.value == 0.0
    assert noise.options == (0.0, 0.01, 0.1, 1.0, 10.0) and noise.value == 0.0
    assert (steps.value, steps.min, steps.max) == (1, 1, 50)
    assert phi.options == ("tanh", "ReLU, phi'(0) = 1", "ReLU, phi'(0) = 0 (torch)")
    assert phi.value == "tanh"
    assert not any(s.continuous_update for s in (eta, scale, noise, steps))
    for name in ("eta", "init_scale", "upper_noise", "steps", "activation", "relu_grad_at_zero"):
        with pytest.raises(ValueError, match=f"^net: '{name}' is set by the explorer's controls"):
            T.theorem_explorer(X, y, kernel_size=2, **{name: 1})
    drawn = []
    real = T.plot_theorem_pair
    monkeypatch.setattr(T, "plot_theorem_pair", lambda ch, **k: drawn.append(ch) or real(ch, **k))
    T.theorem_explorer(X, y, width=3)
    assert tuple(drawn[0].cnfm.shape) == (25, 25)
    plt.close("all")


def test_theorem_explorer_draws_check_theorem_of_the_chosen_values(monkeypatch, capsys):
    """It opens on check_theorem of the controls' opening values; each change draws
    plot_theorem_pair of check_theorem at the new values (kernel_size and ``net`` passed on)
    on one figure, displayed; a run that cannot move says why instead; a view seen before is
    not computed again."""
    pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    X, y = _explorer_data()
    real_check, real_plot = T.check_theorem, T.plot_theorem_pair
    calls, drawn = [], []
    monkeypatch.setattr(T, "check_theorem", lambda *a, **k: calls.append(k) or real_check(*a, **k))
    monkeypatch.setattr(
        T, "plot_theorem_pair", lambda ch, **k: drawn.append((ch, k)) or real_plot(ch, **k)
    )

    def expect(**kw):
        opts = dict(eta=0.02, init_scale=0.0, upper_noise=0.0, steps=1, activation="tanh")
        ref = real_check(X, y, kernel_size=2, width=3, hidden=(2,), **{**opts, **kw})
        check, k = drawn[-1]
        assert k["kernel_size"] == 2 and k["fig"] is drawn[0][1]["fig"]
        for name in ("cnfm", "agop0", "agop_data"):
            torch.testing.assert_close(getattr(check, name), getattr(ref, name), rtol=0, atol=0)
        assert len(k["fig"].axes) == 4  # three matrices and the 2 x 2 filter

    box = T.theorem_explorer(X, y, kernel_size=2, width=3, hidden=(2,))
    assert len(calls) == 1 and len(drawn) == 1
    expect()
    assert "Figure" in capsys.readouterr().out  # displayed
    first = drawn[0][0]
    c = _explorer_controls(box)
    c["step eta"].value = 0.05
    expect(eta=c["step eta"].value)
    c["steps"].value = 2
    expect(eta=c["step eta"].value, steps=2)
    c["W_0 scale"].value = 1e-3
    expect(eta=c["step eta"].value, steps=2, init_scale=1e-3)
    c["upper noise"].value = 0.1
    expect(eta=c["step eta"].value, steps=2, init_scale=1e-3, upper_noise=0.1)
    c["phi"].value = "ReLU, phi'(0) = 1"
    expect(
        eta=c["step eta"].value,
        steps=2,
        init_scale=1e-3,
        upper_noise=0.1,
        activation="relu",
        relu_grad_at_zero=1.0,
    )
    for control, value in [("upper noise", 0.0), ("W_0 scale", 0.0), ("steps", 1)]:
        c[control].value = value
    c["step eta"].value = drawn[0][0].settings["eta"]
    expect(activation="relu", relu_grad_at_zero=1.0)
    n = len(drawn)
    capsys.readouterr()
    c["phi"].value = "ReLU, phi'(0) = 0 (torch)"  # nothing moves from W_0 = 0
    assert len(drawn) == n
    with pytest.raises(ValueError) as err:
        real_check(X, y, kernel_size=2, width=3, activation="relu", relu_grad_at_zero=0.0)
    assert capsys.readouterr().out.strip().endswith(f"nothing to compare: {err.value}")
    count = len(calls)
    c["phi"].value = "tanh"  # the opening view again: drawn from the first run
    assert len(calls) == count and drawn[-1][0] is first
    plt.close("all")


# Mutation testing, stop 35


def _tiny(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    X = torch.rand(6, 1, 5, 5, generator=g, dtype=dtype)
    return X, torch.tensor([1.0, -1.0, 1.0, -1.0, 0.5, -2.0], dtype=dtype)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: T.TheoremNet(1, "a"), TypeError, "^image_size "),
        (lambda: T.TheoremNet(0, 5), ValueError, "^in_channels must"),
        (lambda: T.TheoremNet(1, 5, width=0), ValueError, "^width must"),
        (lambda: T.TheoremNet(1, 5, kernel_size=0), ValueError, "^kernel_size must"),
        (lambda: T.TheoremNet(1, 5, hidden_kernel_size=0), ValueError, "^hidden_kernel_size must"),
        (lambda: T.TheoremNet(1, 5, hidden=(2, 0)), ValueError, r"^hidden\[1\] must be"),
        (lambda: T.TheoremNet(1, 5, hidden=(2,), hidden_kernel_size=4), ValueError, "^hidden_kernel_size must be odd"),
        (lambda: T.TheoremNet(1, 5, kernel_size=6), ValueError, "^kernel_size=6 exceeds"),
        (lambda: T.TheoremNet(1, 5, init_scale=-0.1), ValueError, "^init_scale must"),
        (lambda: T.TheoremNet(1, 5, upper_noise=-0.1), ValueError, "^upper_noise must"),
        (lambda: T.TheoremNet(1, 5, upper_padding_mode="x"), ValueError, "^upper_padding_mode must be one of"),
        (lambda: T.train_gd(T.TheoremNet(1, 5), "a", [1], 0.1), TypeError, "^X must"),
        (lambda: T.train_gd(T.TheoremNet(1, 5), *_tiny(), 0.1, steps=-1), ValueError, "^steps must"),
        (lambda: T.train_gd(T.TheoremNet(1, 5), *_tiny(), 0.0), ValueError, "^eta must"),
        (lambda: T.train_gd(T.TheoremNet(1, 5), *_tiny(), 0.1, train="x"), ValueError, "^train must be one of"),
        (lambda: T.train_gd(T.TheoremNet(1, 5), *_tiny(), 0.1, batch_size=0), ValueError, "^batch_size must"),
        (lambda: T.train_gd(T.TheoremNet(1, 5), *_tiny(), 0.1, batch_size=7), ValueError, "^batch_size must"),
        (lambda: T.label_weighted_patch_sum("a", [1], 3), TypeError, "^X must"),
        (lambda: T.label_weighted_patch_sum(_tiny()[0], "a", 3), TypeError, "^y must"),
        (lambda: T.label_weighted_patch_sum(_tiny()[0], [np.nan] * 6, 3), ValueError, "^y "),
        (lambda: T.label_weighted_patch_sum(_tiny()[0], torch.ones(6, 2), 3), ValueError, r"^y must have shape \(n,\) = \(6,\)"),
        (lambda: T.closed_form_w1("a", [1], torch.ones(2), 0.1, 3), TypeError, "^X must"),
        (lambda: T.closed_form_w1(*_tiny(), "a", 0.1, 3), TypeError, "^v must"),
        (lambda: T.agop_on_data(T.TheoremNet(1, 5), "a"), TypeError, "^X must"),
        (lambda: T.proportionality("a", torch.eye(2)), TypeError, "^A must"),
        (lambda: T.proportionality(torch.eye(2) * np.nan, torch.eye(2)), ValueError, "^A "),
        (lambda: T.proportionality(torch.eye(2), "a"), TypeError, "^B must"),
        (lambda: T.proportionality(torch.eye(2), torch.eye(2) * np.nan), ValueError, "^B "),
        (lambda: T.proportionality(torch.zeros(2, 2), torch.zeros(2, 2)), ValueError, "^A and B: proportionality is undefined for a zero matrix"),
    ],
)  # fmt: skip
def test_stop35_each_argument_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_stop35_theorem_net_edges_of_its_arguments_are_accepted():
    """A kernel as large as the image (one position), a hidden layer of width 1, a chunk of
    one image, a batch of one, y as a column: accepted and computed."""
    X, y = _tiny()
    net = T.TheoremNet(1, 5, kernel_size=5, hidden=(1,), dtype=torch.float64)
    assert net.positions == 1 and net(X).shape == (6, 1)
    u = T.label_weighted_patch_sum(X, y, 3, chunk_size=1)
    torch.testing.assert_close(u, (y[:, None] * extract_patches(X, 3).sum(1)).mean(0))
    torch.testing.assert_close(T.label_weighted_patch_sum(X, y[:, None], 3), u)
    T.train_gd(T.TheoremNet(1, 5, dtype=torch.float64), X, y, 0.1, batch_size=1)


def test_stop35_defaults_of_the_network_and_its_activation():
    """Width 8, tanh, circular padding, seed 0; the activation's defaults tanh and relu'(0)=0."""
    net = T.TheoremNet(1, 5, hidden=(2,), init_scale=1.0, dtype=torch.float64)
    assert net.conv.out_channels == 8 and net.phi.name == "tanh"
    assert net.upper[0].padding_mode == "circular"
    same = T.TheoremNet(1, 5, hidden=(2,), init_scale=1.0, seed=0, dtype=torch.float64)
    torch.testing.assert_close(net.conv.weight, same.conv.weight, rtol=0, atol=0)
    assert T.Activation().name == "tanh" and T.Activation("relu").grad_at_zero == 0.0


def test_stop35_initial_weights_are_the_seeded_normal_draws_scaled():
    """W_0 = init_scale * N (float64 draws of torch.Generator(seed), first layer first), each
    upper map c_l (1 + upper_noise * N), the read-out's bias on the read-out; a hidden kernel
    of 5 is padded by 2 (the output keeps its size)."""
    net = T.TheoremNet(
        2, (5, 6), width=3, hidden=(2,), hidden_kernel_size=5, init_scale=0.3,
        upper_noise=0.2, readout_bias=0.5, seed=4, dtype=torch.float64,
    )  # fmt: skip
    g = torch.Generator().manual_seed(4)
    want = 0.3 * torch.randn((3, 2, 3, 3), generator=g, dtype=torch.float64)
    torch.testing.assert_close(net.conv.weight.detach(), want, rtol=0, atol=0)
    consts = [1 / (3 * 25), 1 / (2 * 3 * 4) ** 0.5]
    assert net.upper_constants() == pytest.approx(consts, rel=1e-15)
    for m, c in zip(net.upper_linear_maps(), consts, strict=True):
        noise = torch.randn(m.weight.shape, generator=g, dtype=torch.float64)
        torch.testing.assert_close(m.weight.detach(), c * (1 + 0.2 * noise), rtol=1e-15, atol=0)
    assert net.upper[-1].bias.item() == 0.5
    assert net(torch.zeros(1, 2, 5, 6, dtype=torch.float64)).item() == 0.5


def test_stop35_upper_constants_are_the_closed_form():
    """c_l = 1 / (w_{l-1} r^2) for each upper convolution, a = 1 / sqrt(k_L P)."""
    net = T.TheoremNet(1, (6, 7), width=3, kernel_size=2, hidden=(4, 5), hidden_kernel_size=3)
    P = 5 * 6
    assert net.upper_constants() == pytest.approx([1 / (3 * 9), 1 / (4 * 9), 1 / (5 * P) ** 0.5])


def test_stop35_network_memory_check_counts_every_weight(monkeypatch):
    """Refused one byte below the weights' bytes, accepted at exactly them: in_channels *
    width * p^2 + the hidden convolutions' r^2 w_{l-1} w_l + the read-out's k_L P weights."""
    import agop.validation

    kw = dict(width=2, kernel_size=3, hidden=(3,), hidden_kernel_size=5, dtype=torch.float64)
    need = (2 * 2 * 9 + 25 * 2 * 3 + 3 * (3 * 5)) * 8  # image 5 x 7: P = 3 * 5
    monkeypatch.setattr(agop.validation, "_memory_bytes", lambda: need)
    T.TheoremNet(2, (5, 7), **kw)
    monkeypatch.setattr(agop.validation, "_memory_bytes", lambda: need - 1)
    with pytest.raises(ValueError, match=r"^in_channels, width, kernel_size, hidden, "
                       r"hidden_kernel_size: the network's weights would need"):  # fmt: skip
        T.TheoremNet(2, (5, 7), **kw)


def test_stop35_float32_inputs_meet_a_float64_model():
    """Integer labels, a float32 v, float32 images for a float64 network: the same numbers as
    all-float64 inputs (read in the images' or the network's dtype)."""
    X, y = _tiny()
    ints = [1, -1, 1, -1, 1, -2]
    u = T.label_weighted_patch_sum(X, ints, 3)
    torch.testing.assert_close(
        u, T.label_weighted_patch_sum(X, torch.tensor(ints, dtype=X.dtype), 3)
    )
    v = torch.full((4,), 0.25)
    w1 = T.closed_form_w1(X, ints, v, 0.1, 3)
    assert w1.dtype == torch.float64
    torch.testing.assert_close(w1, 0.1 * torch.outer(v.double(), u))
    net = T.TheoremNet(1, 5, width=4, dtype=torch.float64)
    X32 = X.float()
    a = T.first_layer(T.train_gd(net, X32, y, 0.1))
    b = T.first_layer(T.train_gd(net, X32.double(), y.float().double(), 0.1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_stop35_train_gd_all_layers_and_its_default_seed():
    """``train="all"`` moves the upper layers too; the default seed is 0."""
    X, y = _tiny()
    net = T.TheoremNet(1, 5, width=2, hidden=(2,), init_scale=0.1, dtype=torch.float64)
    moved = T.train_gd(net, X, y, 0.1, train="all")
    assert not torch.equal(moved.upper[0].weight, net.upper[0].weight)
    first = T.train_gd(net, X, y, 0.1, train="first")
    assert torch.equal(first.upper[0].weight, net.upper[0].weight)
    a = T.train_gd(net, X, y, 0.1, steps=2, batch_size=2)
    b = T.train_gd(net, X, y, 0.1, steps=2, batch_size=2, seed=0)
    torch.testing.assert_close(a.conv.weight, b.conv.weight, rtol=0, atol=0)


def test_stop35_proportionality_computes_in_float64():
    """A float32 matrix with a trace float32 cannot hold (2^24 + 1) is read in float64."""
    big = torch.diag(torch.tensor([2.0**24, 1.0], dtype=torch.float32))
    eye = torch.eye(2, dtype=torch.float64)
    assert T.proportionality(big, eye)["ratio"] == (2**24 + 1) / 2
    assert T.proportionality(eye, big)["ratio"] == 2 / (2**24 + 1)


def test_stop35_check_theorem_records_its_settings_and_passes_them_on():
    """The settings as given (defaults eta 0.02, 1 step, full batch, train "first", seed 0,
    and the network's keywords); batch size, train and seed reach train_gd; the AGOP over the
    data and v are the trained network's."""
    X, y = _tiny()
    res = check_theorem(X, y, width=2, hidden=(2,))
    assert res.settings == dict(eta=0.02, steps=1, batch_size=None, train="first", seed=0,
                                width=2, hidden=(2,))  # fmt: skip
    net = T.TheoremNet(1, 5, width=2, hidden=(2,), dtype=torch.float64)
    trained = T.train_gd(net, X, y, 0.02)
    torch.testing.assert_close(res.W1, T.first_layer(trained), rtol=0, atol=0)
    torch.testing.assert_close(res.agop_data, T.agop_on_data(trained, X))
    torch.testing.assert_close(res.v, T.derivative_at_zero(trained))
    kw = dict(eta=0.1, steps=3, batch_size=2, train="all", seed=5, init_scale=0.1)
    res = check_theorem(X, y, width=2, hidden=(2,), **kw)
    assert res.settings == dict(kw, width=2, hidden=(2,))
    net = T.TheoremNet(1, 5, width=2, hidden=(2,), init_scale=0.1, seed=5, dtype=torch.float64)
    trained = T.train_gd(net, X, y, 0.1, steps=3, batch_size=2, train="all", seed=5)
    torch.testing.assert_close(res.W1, T.first_layer(trained), rtol=0, atol=0)
    torch.testing.assert_close(res.v, T.derivative_at_zero(trained))


def test_stop35_relax_rows_defaults_and_a_run_that_does_not_move(monkeypatch, capsys):
    """Default relaxations are RELAXATIONS, default eta 0.02 and on_data, no progress bar
    unless asked (then labelled "relax"); a run that leaves W at 0 gives moved=False and the
    next value still runs; each row holds its numbers, None for a zero AGOP at 0."""
    X, y = _tiny()
    small = {"r": ("init_scale", (0.0, 0.1), {"activation": "relu"})}
    monkeypatch.setattr(T, "RELAXATIONS", small)
    rows = T.relax(X, y, width=2)
    assert capsys.readouterr().err == ""
    assert rows[0] == {"setting": "r", "parameter": "init_scale", "value": 0.0, "moved": False}
    res = check_theorem(X, y, eta=0.02, init_scale=0.1, activation="relu", width=2)
    assert res.at_zero is None
    assert rows[1] == {
        "setting": "r", "parameter": "init_scale", "value": 0.1, "moved": True,
        "init_to_update": float(res.W0.norm() / (res.W1 - res.W0).norm()),
        "pearson0": None, "residual0": None,
        "pearson_data": res.on_data["pearson"], "residual_data": res.on_data["residual"],
    }  # fmt: skip
    rows = T.relax(X, y, {"t": ("init_scale", (0.1,), {})}, width=2, progress=True)
    assert "relax" in capsys.readouterr().err
    res = check_theorem(X, y, init_scale=0.1, width=2)
    assert rows[0]["pearson0"] == res.at_zero["pearson"]
    assert rows[0]["residual0"] == res.at_zero["residual"]


def _planted_check_35(agop_data=True, zero_agop0=False):
    """A TheoremCheck of planted matrices: W^T W = 2 t t^T + 0.5 s s^T (top eigenvector t, a
    3 x 3 filter with a positive sum), the AGOP at 0 three times it (or zero), the AGOP over
    the data a matrix with negative entries."""
    t = torch.tensor([3.0, -1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    t = t / t.norm()
    s = torch.zeros(9, dtype=torch.float64)
    s[2] = 1.0
    cnfm = 0.02 * torch.outer(t, t) + 0.005 * torch.outer(s, s)  # largest entry below 1
    agop0 = torch.zeros(9, 9, dtype=torch.float64) if zero_agop0 else 3 * cnfm
    data = cnfm - 0.1 * torch.eye(9, dtype=torch.float64)
    return T.TheoremCheck(
        W0=torch.zeros(2, 9, dtype=torch.float64), W1=torch.ones(2, 9, dtype=torch.float64),
        cnfm=cnfm, agop0=agop0, agop_data=data if agop_data else None,
        v=torch.ones(1, 2, dtype=torch.float64),
        at_zero=None if zero_agop0 else T.proportionality(agop0, cnfm),
        on_data=T.proportionality(data, cnfm) if agop_data else None,
    ), t  # fmt: skip


def test_stop35_theorem_pair_draws_each_matrix_scaled_with_its_numbers_and_the_filter():
    """Panels in order W^T W, AGOP at 0, AGOP over the data, the filter: each matrix divided
    by its largest |entry| on a colour scale -1 to 1, the Pearson correlation (6 decimals) and
    residual (1 decimal, exponent) in its title; the filter the top eigenvector of W^T W as
    p x p, signed to a positive sum, on +-its largest |entry|; no ticks."""
    import matplotlib.pyplot as plt

    check, t = _planted_check_35()
    s = torch.zeros(9, dtype=torch.float64)
    s[2] = 1.0
    given = plt.figure()
    fig = T.plot_theorem_pair(check, kernel_size=3, fig=given)
    assert fig is given and len(fig.axes) == 4
    titles = ["CNFM $W^\\top W$", "AGOP at $x=0$", "AGOP over the data"]
    for ax, A, title, prop in zip(
        fig.axes, (check.cnfm, check.agop0, check.agop_data), titles,
        (None, check.at_zero, check.on_data), strict=False,
    ):  # fmt: skip
        a = A.numpy()
        np.testing.assert_allclose(ax.get_images()[0].get_array(), a / np.abs(a).max())
        assert ax.get_images()[0].get_clim() == (-1, 1)
        if prop is not None:
            title += f"\npearson {prop['pearson']:.6f}, residual {prop['residual']:.1e}"
        assert ax.get_title() == title
        assert len(ax.get_xticks()) == len(ax.get_yticks()) == 0
    filt = fig.axes[3].get_images()[0]
    np.testing.assert_allclose(filt.get_array(), t.reshape(3, 3).numpy(), atol=1e-12)
    lim = float(t.abs().max())
    np.testing.assert_allclose(filt.get_clim(), (-lim, lim))
    assert fig.axes[3].get_title() == "top eigenvector of $W^\\top W$\n(the learned filter)"
    # eigh returns this one's top eigenvector with a negative sum: drawn flipped
    t2 = torch.tensor([2.0, 0, 0, 0, 0, 0, 0, 0, 1], dtype=torch.float64) / 5**0.5
    assert float(torch.linalg.eigh(0.02 * torch.outer(t2, t2))[1][:, -1].sum()) < 0
    check.cnfm = 0.02 * torch.outer(t2, t2) + 0.005 * torch.outer(s, s)
    fig2 = T.plot_theorem_pair(check, kernel_size=3)
    np.testing.assert_allclose(
        fig2.axes[3].get_images()[0].get_array(), t2.reshape(3, 3).numpy(), atol=1e-12
    )
    plt.close(fig2)
    plt.close(fig)


def test_stop35_theorem_pair_without_data_or_filter_and_a_zero_agop():
    """No AGOP over the data: two panels (and the filter); no kernel_size, or a filter that
    is not p x p (two channels): no filter panel; a zero AGOP at 0 is drawn as zeros, titled
    so; a kernel_size that divides q but whose square does not is refused."""
    import matplotlib.pyplot as plt

    check, _ = _planted_check_35(agop_data=False, zero_agop0=True)
    fig = T.plot_theorem_pair(check, kernel_size=3)
    assert len(fig.axes) == 3
    assert fig.axes[1].get_title() == "AGOP at $x=0$\n(zero matrix)"
    np.testing.assert_array_equal(fig.axes[1].get_images()[0].get_array(), np.zeros((9, 9)))
    plt.close(fig)
    check, _ = _planted_check_35()
    fig = T.plot_theorem_pair(check)
    assert len(fig.axes) == 3
    plt.close(fig)
    X = torch.rand(6, 2, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    two = check_theorem(X, [1, -1, 1, -1, 1, -1], width=2)
    fig = T.plot_theorem_pair(two, kernel_size=3)
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="^kernel_size must fit the check's W"):
        T.plot_theorem_pair(two, kernel_size=2)  # q = 18: 18 % 2 == 0, 18 % 4 != 0
    with pytest.raises(TypeError, match="^fig must be None or a"):
        T.plot_theorem_pair(two, fig=1)


def _relax_rows():
    """Two parameters; "b" shares init_scale with "a"; a run that did not move; a residual of
    0 (drawn at 1e-17 on the log axis); a None where the AGOP at 0 was zero."""

    def row(s, p, v, p0, r0, pd, rd, moved=True):
        out = {"setting": s, "parameter": p, "value": v, "moved": moved}
        if moved:
            out.update(pearson0=p0, residual0=r0, pearson_data=pd, residual_data=rd)
        return out

    return [
        row("a", "init_scale", 0.0, 1.0, 0.0, 0.9, 0.2),
        row("a", "init_scale", 0.1, 0.5, 0.3, 0.4, 0.6),
        row("a", "init_scale", 1.0, 0, 0, 0, 0, moved=False),
        row("b", "init_scale", 0.1, None, None, 0.7, 0.05),
        row("b", "init_scale", 1.0, None, None, 0.6, 0.5),
        row("c", "upper_noise", 0.01, 0.8, 0.01, 0.85, 0.02),
        row("d", "eta", 0.5, 0.3, 0.4, 0.2, 0.1),
    ]  # fmt: skip


def test_stop35_relaxations_draw_each_settings_numbers_by_parameter():
    """One column per parameter (in order of first appearance), Pearson on top and the
    residual (log axis, 0 drawn at 1e-17) below, x = 0 solid and data dashed, labelled
    "name (x = 0)" / "name (data)"; moved runs only; None left out; symlog x axes with the
    parameter's linear threshold (init_scale 1e-4, upper_noise 1e-2, steps 1), linear for
    others; columns share x; settings picks the settings drawn."""
    import matplotlib.pyplot as plt

    rows = _relax_rows()
    given = plt.figure()
    fig = T.plot_relaxations(rows, fig=given)
    assert fig is given
    axes = np.array(fig.axes).reshape(2, 3)
    got = {
        (c, r, ln.get_label()): (list(ln.get_xdata()), list(ln.get_ydata()), ln.get_linestyle())
        for r in range(2) for c in range(3) for ln in axes[r, c].get_lines()
    }  # fmt: skip
    assert got == {
        (0, 0, "a (x = 0)"): ([0.0, 0.1], [1.0, 0.5], "-"),
        (0, 0, "a (data)"): ([0.0, 0.1], [0.9, 0.4], "--"),
        (0, 1, "a (x = 0)"): ([0.0, 0.1], [1e-17, 0.3], "-"),
        (0, 1, "a (data)"): ([0.0, 0.1], [0.2, 0.6], "--"),
        (0, 0, "b (data)"): ([0.1, 1.0], [0.7, 0.6], "--"),
        (0, 1, "b (data)"): ([0.1, 1.0], [0.05, 0.5], "--"),
        (1, 0, "c (x = 0)"): ([0.01], [0.8], "-"),
        (1, 0, "c (data)"): ([0.01], [0.85], "--"),
        (1, 1, "c (x = 0)"): ([0.01], [0.01], "-"),
        (1, 1, "c (data)"): ([0.01], [0.02], "--"),
        (2, 0, "d (x = 0)"): ([0.5], [0.3], "-"),
        (2, 0, "d (data)"): ([0.5], [0.2], "--"),
        (2, 1, "d (x = 0)"): ([0.5], [0.4], "-"),
        (2, 1, "d (data)"): ([0.5], [0.1], "--"),
    }
    for c, (param, thresh) in enumerate(
        (("init_scale", 1e-4), ("upper_noise", 1e-2), ("eta", None))
    ):
        assert axes[1, c].get_xlabel() == param and axes[1, c].get_yscale() == "log"
        assert axes[0, c].get_yscale() == "linear"
        for r in range(2):
            if thresh is None:
                assert axes[r, c].get_xscale() == "linear"
            else:
                assert axes[r, c].get_xscale() == "symlog"
                assert axes[r, c].xaxis.get_transform().linthresh == thresh
        assert axes[0, c].get_shared_x_axes().joined(axes[0, c], axes[1, c])
        labels = [t.get_text() for t in axes[1, c].get_legend().get_texts()]
        assert labels == [ln.get_label() for ln in axes[1, c].get_lines()]
    assert not axes[0, 0].get_shared_x_axes().joined(axes[0, 0], axes[0, 1])
    assert axes[0, 0].get_ylabel() == "Pearson correlation"
    assert axes[1, 0].get_ylabel() == "residual $|A - cB|_F / |A|_F$"
    assert axes[0, 1].get_ylabel() == axes[1, 1].get_ylabel() == ""
    plt.close(fig)
    steps = [dict(r, parameter="steps", value=v) for r, v in zip(rows[:2], (1, 2), strict=True)]
    fig = T.plot_relaxations([*steps, rows[5]], settings=["a"])
    (top, bottom) = fig.axes
    assert top.xaxis.get_transform().linthresh == 1
    assert {ln.get_label() for ln in top.get_lines()} == {"a (x = 0)", "a (data)"}
    plt.close(fig)


@pytest.mark.parametrize("key", ["pearson0", "residual0", "pearson_data", "residual_data"])
def test_stop35_relaxations_name_a_bad_number_and_bad_settings(key):
    bad = dict(_relax_rows()[0], **{key: float("nan")})
    with pytest.raises(ValueError, match=rf"^rows\[0\]\['{key}'\] must be a finite"):
        T.plot_relaxations([bad])
    if key == "pearson0":
        with pytest.raises(TypeError, match="^settings must be a list of setting names, got str$"):
            T.plot_relaxations(_relax_rows(), settings="a")
        with pytest.raises(TypeError, match="^fig must be None or a"):
            T.plot_relaxations(_relax_rows(), fig=1)


def test_stop35_theorem_explorer_controls_and_the_views_it_shows(monkeypatch, capsys):
    """Controls (step eta log-slider 1e-4..10^-0.5 at 0.02, W_0 scale and upper noise over
    their listed values at 0, steps 1..50 at 1, phi over three activations at tanh; sliders
    update on release); each view is plot_theorem_pair of check_theorem at those values;
    ReLU with phi'(0) = 0 from W_0 = 0 prints why nothing is drawn."""
    pytest.importorskip("ipywidgets")
    import IPython.display

    from agop_book.bench.widgets import _controls

    X, y = _tiny()
    shown = []
    monkeypatch.setattr(
        IPython.display, "display", lambda fig: shown.append([ax.get_title() for ax in fig.axes])
    )
    box = T.theorem_explorer(X, y, kernel_size=3, width=2)
    rows = [[c.description for c in row.children] for row in box.children[:2]]
    assert rows == [["step eta", "W_0 scale", "upper noise"], ["steps", "phi"]]
    c = _controls(box)
    eta = c["step eta"]
    assert (eta.value, eta.base, eta.min, eta.max) == (0.02, 10, -4, -0.5)
    assert list(c["W_0 scale"].options) == [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert list(c["upper noise"].options) == [0.0, 0.01, 0.1, 1.0, 10.0]
    assert c["W_0 scale"].value == c["upper noise"].value == 0.0
    steps = c["steps"]
    assert (steps.value, steps.min, steps.max) == (1, 1, 50)
    assert list(c["phi"].options) == ["tanh", "ReLU, phi'(0) = 1", "ReLU, phi'(0) = 0 (torch)"]
    assert c["phi"].value == "tanh"
    assert not any(
        c[k].continuous_update for k in ("step eta", "W_0 scale", "upper noise", "steps")
    )

    def titles(**kw):
        import matplotlib.pyplot as plt

        fig = T.plot_theorem_pair(check_theorem(X, y, kernel_size=3, width=2, **kw), kernel_size=3)
        plt.close(fig)
        return [ax.get_title() for ax in fig.axes]

    assert shown == [titles(eta=0.02, init_scale=0.0, upper_noise=0.0, steps=1)]
    c["W_0 scale"].value = 0.1
    c["upper noise"].value = 0.1
    c["steps"].value = 3
    c["step eta"].value = 0.1
    assert shown[-1] == titles(eta=0.1, init_scale=0.1, upper_noise=0.1, steps=3)
    c["phi"].value = "ReLU, phi'(0) = 1"
    assert shown[-1] == titles(
        eta=0.1, init_scale=0.1, upper_noise=0.1, steps=3, activation="relu", relu_grad_at_zero=1.0
    )
    c["phi"].value = "ReLU, phi'(0) = 0 (torch)"
    n = len(shown)
    capsys.readouterr()
    c["W_0 scale"].value = 0.0
    out = capsys.readouterr().out
    assert len(shown) == n and "nothing to compare: the first layer is still 0" in out
    with pytest.raises(ValueError, match="^net: 'activation' is set by the explorer"):
        T.theorem_explorer(X, y, kernel_size=3, activation="relu")
    with pytest.raises(ValueError, match="^net: 'relu_grad_at_zero' is set by the explorer"):
        T.theorem_explorer(X, y, kernel_size=3, relu_grad_at_zero=1.0)
