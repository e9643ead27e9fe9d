"""An independent, brute-force patch-AGOP: explicit patch variables, one layer at a time.

The conv layer's forward is replaced by a matrix product over explicit patch tensors
``x[j]`` that require grad, ``h[j] = W x[j] + b``, and the network is differentiated with
respect to those patches, one output at a time, as the paper's original code did. No
``W^T G W`` identity is used: the AGOP is formed from the ``q``-dimensional patch gradients
themselves. Slow, simple, and the reference that :func:`agop.features.patch_agop` is tested
and benchmarked against.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from agop.features import _check_outputs, _eval_mode, _output_matrix, select_layers
from agop.patches import conv_padding, conv_patches, output_size
from agop.validation import check_images


def brute_force_patch_agop(model: nn.Module, X, layer_name: str,
                           outputs: Sequence[int] | None = None) -> torch.Tensor:
    """``(1/n) sum_i sum_j sum_c grad_{x[j]} f_c(x_i) grad_{x[j]} f_c(x_i)^T`` for one layer.

    The patches of every group count as separate patch samples of dimension
    ``q = (c/g) k_h k_w``. Runs on the model's device, in its dtype, in eval mode.
    """
    conv = select_layers(model, [layer_name])[layer_name]
    param = next(model.parameters())
    X = check_images(X, "X", dtype=param.dtype, device=param.device)
    n = X.shape[0]
    g, k_out = conv.groups, conv.out_channels
    patches: list[torch.Tensor] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        p = conv_patches(conv, x).detach().requires_grad_()  # (m, P, g q): the variables
        patches.append(p)
        m, P, _ = p.shape
        W = conv.weight.reshape(g, k_out // g, -1)
        h = torch.einsum("mpgq,gkq->mpgk", p.reshape(m, P, g, -1), W).reshape(m, P, k_out)
        if conv.bias is not None:
            h = h + conv.bias
        H, W_out = output_size(tuple(x.shape[2:]), conv.kernel_size, conv.stride,
                               conv_padding(conv), conv.dilation)
        return h.transpose(1, 2).reshape(m, k_out, H, W_out)

    with _eval_mode(model, "the patch-AGOP"), torch.enable_grad():
        conv.forward = forward
        try:
            f = _output_matrix(model(X), n)
        finally:
            del conv.forward
        sel = range(f.shape[1]) if outputs is None else _check_outputs(outputs, f.shape[1]).tolist()
        agop = None
        for c in sel:
            grads = torch.autograd.grad(f[:, c].sum(), patches, retain_graph=True, allow_unused=True)
            for grad in grads:
                if grad is None:
                    continue
                grad = grad.reshape(-1, grad.shape[-1] // g)
                agop = grad.T @ grad if agop is None else agop + grad.T @ grad
    return agop / n

