"""agop_book.nets: SimpleCNN and train (shapes, initialisations, determinism, learning,
checkpoints, errors) and the CNN baseline with the kernel's architecture (CNNBaseline, its
validation split)."""

import copy

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from agop.features import conv_layers
from agop_book.ch05_deep_convrfm import local_signal_task
from agop_book.nets import (
    CNNBaseline,
    SimpleCNN,
    accuracy,
    load_checkpoint,
    predict,
    train,
    validation_split,
)


def separable(n=96, seed=0):
    """Label = whether the image's left half is brighter than its right half."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    X = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    X[:, :, :, :4] += (2 * y - 1).float()[:, None, None, None]
    return X, y


@pytest.mark.parametrize(
    "pool,padding,size", [(None, 0, (4, 4)), ("max", 1, (2, 2)), ("avg", "same", (2, 2))]
)
def test_shapes_and_layers(pool, padding, size):
    net = SimpleCNN(3, 5, 8, depth=2, width=[4, 6], pool=pool, padding=padding)
    assert net.feature_size == size
    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 5)
    assert list(conv_layers(net)) == ["convs.0", "convs.1"]
    assert all(c.bias is None for c in net.convs) and net.readout.bias is None


def test_initialisations():
    a = SimpleCNN(1, 2, 8, seed=3)
    b = SimpleCNN(1, 2, 8, seed=3)
    c = SimpleCNN(1, 2, 8, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.convs[0].weight, c.convs[0].weight)
    net = SimpleCNN(1, 2, 16, depth=2, width=200, init="normal", init_std=[0.5, 0.01, 1.0], seed=0)
    assert float(net.convs[0].weight.std()) == pytest.approx(0.5, rel=0.1)
    assert float(net.convs[1].weight.std()) == pytest.approx(0.01, rel=0.05)
    he = SimpleCNN(1, 2, 16, width=200, init="kaiming", seed=0)
    fan_in = 200 * 9
    assert float(he.convs[1].weight.std()) == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    with pytest.raises(ValueError, match="init_std"):
        SimpleCNN(1, 2, 8, init="normal")
    with pytest.raises(ValueError, match="pool"):
        SimpleCNN(1, 2, 8, pool="median")
    with pytest.raises(ValueError, match="too small"):
        SimpleCNN(1, 2, 4, depth=3, pool="max")


def test_training_is_deterministic_and_learns():
    X, y = separable()
    results = []
    for _ in range(2):
        net = SimpleCNN(1, 2, 8, depth=2, width=4, seed=0)
        results.append(train(net, X, y, epochs=3, lr=1e-2, batch_size=16, seed=1, progress=False))
    a, b = (r.model for r in results)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert results[0].history == results[1].history
    assert results[0].history["train_accuracy"][-1] == 1.0
    X_test, y_test = separable(200, seed=7)
    assert accuracy(a, X_test, y_test) > 0.95


def test_checkpoints_and_model_selection():
    X, y = separable()
    Xv, yv = separable(64, seed=2)
    net = SimpleCNN(1, 2, 8, width=4, seed=0, bias=True)
    result = train(
        net,
        X,
        y,
        Xv,
        torch.nn.functional.one_hot(yv, 2).float(),
        epochs=4,
        optimizer="sgd",
        lr=0.05,
        loss="mse",
        checkpoints=(0, 2, 4),
        progress=False,
    )
    assert sorted(result.checkpoints) == [0, 2, 4]
    assert len(result.history["val_accuracy"]) == 4
    best = max(range(4), key=lambda i: (result.history["val_accuracy"][i], -i))
    assert result.best_epoch == best + 1
    assert result.best_val_accuracy == max(result.history["val_accuracy"])
    init = load_checkpoint(net, result.checkpoints[0])
    assert not torch.equal(init.convs[0].weight, result.checkpoints[4]["convs.0.weight"])
    fresh = SimpleCNN(1, 2, 8, width=4, seed=0, bias=True)
    assert torch.equal(init.convs[0].weight, fresh.convs[0].weight)


def test_train_errors():
    X, y = separable(16)
    net = SimpleCNN(1, 2, 8, width=2)
    with pytest.raises(ValueError, match="labels must be integers"):
        train(net, X, y + 5, epochs=1, progress=False)
    with pytest.raises(ValueError, match="checkpoints"):
        train(net, X, y, epochs=1, checkpoints=(3,), progress=False)
    with pytest.raises(ValueError, match="X_val and Y_val"):
        train(net, X, y, X_val=X, epochs=1, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        train(net, X, y, epochs=1, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match=r"X_train must have shape"):
        train(net, X[0], y, epochs=1, progress=False)


def test_numpy_integer_sizes_and_seeds_build_the_same_network():
    """Sizes and seeds from numpy grids are integers: the same network as with Python ints
    (width=np.int64(4) was taken for a sequence of widths, image_size for a pair)."""
    ref = SimpleCNN(2, 3, (8, 7), depth=2, width=4, seed=5)
    net = SimpleCNN(
        np.int64(2), np.int64(3), (np.int64(8), np.int32(7)), depth=np.int64(2), width=np.int64(4),
        seed=np.uint32(5),
    )  # fmt: skip
    assert net.feature_size == ref.feature_size == (4, 3)
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"width\[1\] must be a positive integer, got 0"):
        SimpleCNN(1, 2, 8, depth=2, width=[4, 0])
    with pytest.raises(TypeError, match=r"image_size must be an integer or a pair"):
        SimpleCNN(1, 2, 8.0)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer .*below 2\*\*63"):
        SimpleCNN(1, 2, 8, seed=2**64)
    X, y = separable(16)
    with pytest.raises(TypeError, match="seed must be an integer, got 2.7"):
        train(SimpleCNN(1, 2, 8, width=2), X, y, epochs=1, seed=2.7, progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        train(SimpleCNN(1, 2, 8, width=2), X, y, epochs=1, batch_size=0, progress=False)


def test_init_std_takes_numpy_floats_and_names_a_bad_entry():
    ref = SimpleCNN(1, 2, 8, width=3, init="normal", init_std=0.5, seed=1)
    for std in (np.float32(0.5), [0.5, np.float64(0.5), 0.5], np.array([0.5, 0.5, 0.5])):
        net = SimpleCNN(1, 2, 8, width=3, init="normal", init_std=std, seed=1)
        for a, b in zip(net.parameters(), ref.parameters(), strict=True):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"init_std\[1\] must be a non-negative number, got -1"):
        SimpleCNN(1, 2, 8, width=3, init="normal", init_std=[0.5, -1.0, 0.5])


def bars(n=120, sigma=0.5, seed=0):
    from agop_book.ch05_deep_convrfm import bars_in_noise

    X, y = bars_in_noise(n, sigma, height=8, width=12, seed=seed, device="cpu")
    return X, y


def test_architecture_is_the_kernels():
    X, y = bars(40)
    m = CNNBaseline(
        depth=2, width=5, patch_size=3, epochs=1, random_state=0, device="cpu", progress=False
    ).fit(X, y)
    convs = list(m.model_.convs)
    assert len(convs) == 2
    for conv in convs:
        assert conv.kernel_size == (3, 3) and conv.padding == (0, 0) and conv.bias is None
    # VALID convs, no pooling, a fully connected read-out of every position
    assert m.model_.readout.in_features == 5 * (8 - 4) * (12 - 4)
    assert [tuple(s) for s in m.transform_shapes()] == [(1, 8, 12), (5, 6, 10)]


def test_feature_matrices_are_filter_covariances():
    X, y = bars(40)
    m = CNNBaseline(
        depth=2, width=4, patch_size=3, epochs=2, random_state=1, device="cpu", progress=False
    ).fit(X, y)
    for conv, A in zip(m.model_.convs, m.cnfms_, strict=True):
        W = conv.weight.detach().reshape(conv.out_channels, -1)
        torch.testing.assert_close(A, W.T @ W)
    # no training: the change from initialisation is exactly zero
    m0 = CNNBaseline(
        depth=2, width=4, patch_size=3, epochs=0, random_state=1, device="cpu", progress=False
    ).fit(X, y)
    assert all(float(D.abs().max()) == 0 for D in m0.delta_cnfms_)
    assert all(float(A.abs().max()) > 0 for A in m0.cnfms_)
    assert all(float(mp.abs().max()) == 0 for mp in m0.feature_maps(X[:2]))
    maps = m.feature_maps(X[:2], subtract_init=False)
    assert [tuple(mp.shape) for mp in maps] == [(2, 8, 12), (2, 6, 10)]
    assert all(bool((mp > 0).any()) for mp in maps)


def test_layer_inputs_are_the_activations():
    X, y = bars(30)
    m = CNNBaseline(
        depth=2, width=3, patch_size=3, epochs=1, random_state=0, device="cpu", progress=False
    ).fit(X, y)
    inputs = m.layer_inputs(X[:5])
    torch.testing.assert_close(inputs[0], X[:5])
    torch.testing.assert_close(inputs[1], torch.relu(m.model_.convs[0](X[:5])).detach())
    agops = m.agops(X[:5], device="cpu")
    from agop_book.reference import brute_force_patch_agop

    for name, A in zip(("convs.0", "convs.1"), agops, strict=True):
        R = brute_force_patch_agop(m.model_, X[:5], name)
        assert A.shape == R.shape and float((A - R).norm() / R.norm()) < 1e-5, name


def test_learns_bars_and_selects_on_validation():
    X, y = bars(200, sigma=0.2)
    Xt, yt = bars(200, sigma=0.2, seed=1)
    m = CNNBaseline(
        depth=1,
        width=8,
        patch_size=3,
        epochs=15,
        lr=1e-2,
        random_state=0,
        device="cpu",
        progress=False,
    ).fit(X, y)
    assert m.score(Xt, yt) > 0.9
    val = m.history_["val_accuracy"]
    assert m.best_epoch_ == 1 + int(np.argmax(val))


def test_validation_split_is_convrfms():
    """Same random_state, same held-out images as ConvRFM (so methods select on one split)."""
    from agop.rfm import ConvRFM

    X, y = bars(30)
    tr, va = validation_split(y.numpy(), 0.2, 3)
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 30
    rfm = ConvRFM(
        kernel="laplace", patch_size=3, n_iter=0, random_state=3, device="cpu", progress=False
    ).fit(X, y)
    torch.testing.assert_close(rfm.X_fit_, X[torch.as_tensor(tr)])


def test_bad_input():
    X, y = bars(20)
    with pytest.raises(ValueError, match="depth must be"):
        CNNBaseline(depth=0).fit(X, y)
    with pytest.raises(ValueError, match="patch_size"):
        CNNBaseline(patch_size=4).fit(X, y)
    with pytest.raises(ValueError, match="need at least"):
        CNNBaseline(depth=5, patch_size=3, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="one label per image"):
        CNNBaseline(depth=1, device="cpu").fit(X, y[:5])
    with pytest.raises(NotFittedError):
        CNNBaseline().predict(X)
    m = CNNBaseline(depth=1, width=2, epochs=1, device="cpu", progress=False).fit(X, y)
    with pytest.raises(ValueError, match="training images' shape"):
        m.predict(X[:, :, :6])
    with pytest.raises(ValueError, match="name must be"):
        local_signal_task("circles")


# Held-out style bugs


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_the_loss_history_is_the_mean_loss_per_image(loss):
    """``history["loss"]`` is each epoch's training loss averaged over the images, batches
    weighted by their size: with a learning rate of 1e-300 (a step below every weight's last
    float64 digit) the weights stay put, so each epoch's
    value is the loss of the whole training set in one call, written out here; 10 images in
    batches of 4 (the last holds 2), so that a mean over batches would differ."""
    X, y = separable(10)
    net = SimpleCNN(1, 2, 8, width=3, seed=0, bias=True).double()
    X = X.double()
    with torch.no_grad():
        out = net(X)
    if loss == "ce":
        expected = float(torch.nn.functional.cross_entropy(out, y))
    else:
        target = torch.nn.functional.one_hot(y, 2).double()
        expected = float(((out - target) ** 2).mean())
    result = train(
        net,
        X,
        y,
        epochs=2,
        optimizer="sgd",
        lr=1e-300,
        momentum=0.0,
        batch_size=4,
        loss=loss,
        progress=False,
        device="cpu",
    )
    assert result.history["loss"] == pytest.approx([expected, expected], rel=1e-12)


# Hostile inputs


def _net():
    return SimpleCNN(1, 2, 8, depth=1, width=2, seed=0).double()


_X = torch.rand(6, 1, 8, 8, dtype=torch.float64)
_y = np.arange(6) % 2
_QUIET = dict(epochs=1, progress=False)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: SimpleCNN(1, 2, 8, bias="no"), TypeError, "bias must be"),
        (lambda: SimpleCNN(1, 2, 8, depth=1, width=2**40), ValueError, "width: the convolution"),
        (lambda: predict(None, _X), TypeError, "model must be"),
        (lambda: predict(_net(), torch.rand(2, 3, 8, 8)), ValueError, "X of shape .* does not fit"),
        (lambda: predict(_net(), torch.rand(2, 1, 5, 5)), ValueError, "X of shape .* does not fit"),
        (lambda: accuracy(_net(), _X, np.array(["a"] * 6)), TypeError, "Y must hold"),
        (lambda: train(None, _X, _y, **_QUIET), TypeError, "model must be"),
        (lambda: train(_net(), _X, _y, lr=0, **_QUIET), ValueError, "lr must be a positive"),
        (lambda: train(_net(), _X, _y, lr=float("nan"), **_QUIET), ValueError, "lr must be a fin"),
        (lambda: train(_net(), _X, _y, weight_decay=-1, **_QUIET), ValueError, "weight_decay"),
        (lambda: train(_net(), _X, _y, momentum=2, **_QUIET), ValueError, "momentum must lie"),
        (lambda: train(_net(), _X, _y, checkpoints=1, **_QUIET), TypeError, "checkpoints must"),
        (
            lambda: train(_net(), _X, _y, checkpoints=[1.5], **_QUIET),
            TypeError,
            r"checkpoints\[0\]",
        ),
        (
            lambda: train(_net(), _X, _y, checkpoints=[True], **_QUIET),
            TypeError,
            r"checkpoints\[0\]",
        ),
        (lambda: load_checkpoint(_net(), {"x": torch.zeros(1)}), ValueError, "state does not fit"),
        (lambda: load_checkpoint(_net(), None), TypeError, "state must be"),
        (lambda: validation_split(np.array([], dtype=int), 0.2, 0), ValueError, "codes must hold"),
        (
            lambda: validation_split(np.zeros((3, 3), int), 0.2, 0),
            ValueError,
            "codes must be a 1-d",
        ),
        (lambda: validation_split(np.array([0.5, 1.5, 0.5]), 0.2, 0), ValueError, "codes must be"),
        (lambda: validation_split(np.array(["a", "b"] * 3), 0.2, 0), ValueError, "codes must be"),
        (lambda: validation_split(np.array([-1, 0] * 3), 0.5, 0), ValueError, "codes must be"),
        (lambda: validation_split(_y, True, 0), TypeError, "validation_fraction must be"),
        (lambda: validation_split(_y, 0.5, -1), ValueError, "random_state must be"),
        (lambda: validation_split(_y, 0.5, "a"), TypeError, "random_state must be"),
        (
            lambda: CNNBaseline(random_state=2**64, device="cpu", **_QUIET).fit(_X, _y),
            ValueError,
            "random_state must be",
        ),
        (
            lambda: CNNBaseline(random_state=1.5, device="cpu", **_QUIET).fit(_X, _y),
            TypeError,
            "random_state must be",
        ),
    ],
)
def test_hostile_inputs_are_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_refused_random_state_leaves_a_fitted_baseline_as_it_was():
    cnn = CNNBaseline(depth=1, width=2, random_state=0, device="cpu", **_QUIET).fit(_X, _y)
    before = cnn.predict(_X)
    with pytest.raises(ValueError, match="random_state"):
        cnn.set_params(random_state=2**40).fit(_X, 1 - _y)
    np.testing.assert_array_equal(cnn.set_params(random_state=0).predict(_X), before)


# Held-out style bugs, round 3


def test_cnn_baseline_selects_on_its_held_out_images():
    """The validation accuracies the baseline selects on are those of its held-out images
    (:func:`validation_split` with its ``random_state``), recomputed from the kept weights:
    on random labels the network fits its training images, so the two accuracies differ."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (40,), generator=g)
    m = CNNBaseline(
        depth=1, width=8, patch_size=3, epochs=6, lr=3e-2, random_state=4, device="cpu",
        progress=False,
    ).fit(X, y)  # fmt: skip
    tr, va = validation_split(y.numpy(), 0.2, 4)
    val = accuracy(m.model_, X[va], y[va])
    train_acc = accuracy(m.model_, X[tr], y[tr])
    assert train_acc != val  # the data tell the two sets apart
    assert m.history_["val_accuracy"][m.best_epoch_ - 1] == val
    assert m.history_["train_accuracy"][m.best_epoch_ - 1] == train_acc


# Hostile inputs, round 4


def test_cnnbaseline_refuses_a_training_run_whose_outputs_overflow():
    """Adam with lr=1e300 keeps the weights finite but huge: the outputs overflow. The fit used
    to succeed with a decision function of NaN; now it fails, naming lr, and a fitted
    estimator keeps its previous network."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(24, 1, 6, 6, generator=g, dtype=torch.float64)
    y = torch.arange(24) % 2
    kw = dict(depth=1, width=4, epochs=2, device="cpu", progress=False, random_state=0)
    model = CNNBaseline(**kw).fit(X, y)
    before = model.decision_function(X)
    with pytest.raises(
        FloatingPointError, match="outputs on the training images overflowed.*lr=1e"
    ):
        model.set_params(lr=1e300).fit(X, y)
    assert np.array_equal(model.decision_function(X), before)


# Held-out style bugs, round 4


def test_delta_cnfms_are_the_cnfms_of_the_weight_changes():
    """``delta_cnfms_`` is :math:`(W - W_0)^\\top (W - W_0)`, the CNFM of what training changed,
    not :math:`W^\\top W - W_0^\\top W_0`; :math:`W_0` is rebuilt here from its definition, the
    SimpleCNN seeded with the integer ``random_state``."""
    X, y = separable(24)
    X = X.double()
    m = CNNBaseline(
        depth=2, width=3, patch_size=3, epochs=2, random_state=5, device="cpu", progress=False
    ).fit(X, y)
    start = SimpleCNN(1, 2, (8, 8), depth=2, width=3, kernel_size=3, seed=5).double()
    for conv, conv0, D in zip(m.model_.convs, start.convs, m.delta_cnfms_, strict=True):
        W = conv.weight.detach().flatten(1)
        W0 = conv0.weight.detach().flatten(1)
        assert not torch.equal(W, W0)  # trained
        torch.testing.assert_close(D, (W - W0).T @ (W - W0), rtol=1e-12, atol=1e-14)
        assert not torch.allclose(D, W.T @ W - W0.T @ W0)


def test_each_epoch_draws_a_fresh_shuffle_from_one_seeded_generator():
    """SGD in mini-batches written out: one generator seeded with ``seed``, a new permutation
    of the images drawn from it at every epoch (not the first epoch's order again), a
    cross-entropy step per batch. Plain SGD is order-dependent, so the final weights pin the
    orders."""
    X, y = separable(6, seed=3)
    X = X.double()
    net = SimpleCNN(1, 2, 8, width=2, seed=1, bias=True).double()
    reference = copy.deepcopy(net)
    train(net, X, y, epochs=3, optimizer="sgd", lr=0.5, momentum=0.0, batch_size=2, seed=7,
          progress=False, device="cpu")  # fmt: skip
    g = torch.Generator().manual_seed(7)
    opt = torch.optim.SGD(reference.parameters(), lr=0.5, momentum=0.0)
    orders = []
    for _ in range(3):
        order = torch.randperm(6, generator=g)
        orders.append(order.tolist())
        for i in range(0, 6, 2):
            idx = order[i : i + 2]
            loss = torch.nn.functional.cross_entropy(reference(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert orders[0] != orders[1]  # the epochs' orders differ
    for p, q in zip(net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# Hostile inputs, round 5


@pytest.mark.parametrize(
    "padding, error, match",
    [
        ("bogus", ValueError, r"^padding must be one of 'same', 'valid'"),  # was torch's message
        (-1, ValueError, r"^padding must be"),  # was "image_size 8 is too small"
        (1.5, TypeError, r"^padding must be"),
    ],
)
def test_round5_simple_cnn_names_a_bad_padding(padding, error, match):
    with pytest.raises(error, match=match):
        SimpleCNN(1, 2, image_size=8, depth=1, width=2, padding=padding)


def test_round5_simple_cnn_keeps_its_paddings():
    for padding, side in ((1, 8), ("same", 8), ("valid", 6), (0, 6)):
        net = SimpleCNN(1, 2, image_size=8, depth=1, width=2, padding=padding)
        assert net.feature_size == (side, side)


# Hostile inputs, round 6


def test_a_model_on_the_meta_device_or_all_frozen_is_refused_by_name():
    """``predict`` on a ``meta`` model returned a tensor of zeros (the outputs had no values);
    ``train`` of a model whose parameters are all frozen failed inside autograd."""
    X = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    meta = SimpleCNN(1, 2, image_size=8, depth=1, width=2, seed=0).double().to("meta")
    with pytest.raises(ValueError, match="^model has parameters on the 'meta' device"):
        predict(meta, X, device="cpu")
    frozen = SimpleCNN(1, 2, image_size=8, depth=1, width=2, seed=0).double()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="^model has no parameter that requires a gradient"):
        train(frozen, X, torch.tensor([0, 1, 0]), epochs=1, progress=False, device="cpu")


def test_train_names_the_validation_argument_that_is_missing_or_of_another_shape():
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64), torch.tensor([0, 1] * 3)

    def fit(**kw):
        net = SimpleCNN(1, 2, image_size=8, depth=1, width=2, seed=0).double()
        return train(net, X, y, epochs=1, progress=False, device="cpu", **kw)

    with pytest.raises(ValueError, match="^Y_val must be given with X_val"):
        fit(X_val=X[:2])
    with pytest.raises(ValueError, match="^X_val must be given with Y_val"):
        fit(Y_val=y[:2])
    with pytest.raises(ValueError, match=r"^X_val must hold images of the shape of X_train's"):
        fit(X_val=X[:2, :, :6, :6], Y_val=y[:2])


def test_simple_cnn_names_image_size_when_the_readout_cannot_fit_in_memory():
    """``image_size=10**6`` asked the allocator for 64 TB of read-out weights."""
    with pytest.raises(ValueError, match="^image_size: the read-out weights would need"):
        SimpleCNN(3, 4, image_size=10**6, depth=2, width=4, seed=0)
