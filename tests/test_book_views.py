"""agop_book.views: what each layer reads, and a feature operator's top eigenvectors as filters
(the feature maps through the convolution are checked in tests/test_pretrained.py)."""

import pytest
import torch
from torch import nn

from agop_book.views import layer_inputs, top_filters


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 3),
    ).double().eval()  # fmt: skip


def test_top_filters_recover_eigenvectors(float64):
    Q, _ = torch.linalg.qr(torch.randn(12, 12))
    A = Q @ torch.diag(torch.arange(12.0, 0.0, -1.0)) @ Q.T
    f = top_filters(A, 3, channels=3, kernel_size=2)
    assert f.shape == (3, 3, 2, 2)
    for i in range(3):
        assert abs(float(f[i].flatten() @ Q[:, i])) == pytest.approx(1.0, abs=1e-10)
        assert f[i].flatten()[f[i].flatten().abs().argmax()] > 0
    with pytest.raises(ValueError, match="n_filters"):
        top_filters(A, 13, 3, 2)
    with pytest.raises(ValueError, match="A must be 27 x 27"):
        top_filters(A, 1, 3, 3)


def test_layer_inputs_are_what_each_layer_reads():
    model = _net()
    X = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    inputs = layer_inputs(model, X, device="cpu")
    assert list(inputs) == ["0", "3"]  # every conv layer, in module order
    torch.testing.assert_close(inputs["0"], X)
    with torch.no_grad():
        torch.testing.assert_close(inputs["3"], model[2](model[1](model[0](X))))
    assert list(layer_inputs(model, X, [model[3], "1"])) == ["3", "1"]  # modules or names


def test_layer_inputs_run_a_training_model_in_eval_mode_and_restore_it():
    """Batch norm reads its running statistics (not the batch's, which it would also update),
    the caller is warned, and every module's mode is restored, also on an error."""
    model = _net()
    model[1].running_mean.fill_(0.5)
    model[1].running_var.fill_(2.0)
    X = torch.randn(5, 2, 8, 8, dtype=torch.float64)
    expected = torch.relu(model[1].eval()(model[0](X))).detach()  # running statistics
    model.train()
    with pytest.warns(UserWarning, match="training mode"):
        got = layer_inputs(model, X, ["3"])["3"]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert all(m.training for m in model.modules())
    assert float(model[1].running_mean[0]) == 0.5  # not updated by the batch
    model[6].eval()  # a mixed model comes back mixed
    with pytest.warns(UserWarning, match="training mode"), pytest.raises(RuntimeError):
        layer_inputs(model, torch.randn(2, 2, 2, 2, dtype=torch.float64), ["7"])  # too small
    assert [m.training for m in model.modules()] == [True] * 7 + [False, True]
    assert all(not m._forward_pre_hooks for m in model.modules())
