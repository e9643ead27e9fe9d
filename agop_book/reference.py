r"""An independent, brute-force patch-AGOP: explicit patch variables, one layer at a time.

The conv layer's patches ``x[j]`` become explicit variables (a zero offset that requires grad,
added to the patches), the layer's output becomes their product ``h[j] = W x[j] + b``, and the
network is differentiated with respect to those patches, as the paper's original code did: the Jacobian of a chunk of outputs with
respect to all patches at once (one vmapped backward over the chunk's basis vectors, which is
what ``vmap(jacrev(...))`` computes), then the sum of the ``q x q`` outer products of the patch
gradients. No :math:`W^\top G W` identity is used. Slow, simple, and the reference that
:func:`agop.features.patch_agop` is tested and benchmarked against.

Two details keep the comparison exact. Images are independent in eval mode, so the gradient of
:math:`\sum_i f_c(x_i)` with respect to the patches of image ``i`` is the gradient of ``f_c(x_i)``:
one backward pass serves the whole batch (the original vmapped over samples instead). And the
layer's output *value* is the conv module's own (the explicit product is checked to agree with
it): in float32 the two differ by round-off, which can flip a ReLU or a max-pool downstream and
change the AGOP by 1e-4 -- a different function, not a different answer.

A layer called more than once in a forward pass (a shared conv applied twice) has one set of
patch variables per call, and the patch-AGOP sums over all of them, as :func:`agop.features.patch_agop`
does: :math:`\frac1n \sum_i \sum_{t} \sum_j \sum_c \nabla_{x_t[j]} f_c(x_i)\,
\nabla_{x_t[j]} f_c(x_i)^\top`, ``t`` over the calls. The patches of a later call depend on
the output of an earlier one, so the gradient with respect to the earlier call's patches
includes the path through the later call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from agop._typing import ArrayLike
from agop.features import _check_outputs, _eval_mode, _forward, conv_layers
from agop.patches import conv_patches
from agop.validation import check_images, check_int, check_not_meta


def brute_force_patch_agop(
    model: nn.Module,
    X: ArrayLike,
    layer_name: str,
    outputs: Sequence[int] | None = None,
    chunk_size: int = 10,
) -> torch.Tensor:
    r""":math:`\frac1n \sum_i \sum_j \sum_c \nabla_{x[j]} f_c(x_i)\, \nabla_{x[j]} f_c(x_i)^\top`
    for one layer.

    The patches of every group count as separate patch samples of dimension
    ``q = (c/g) k_h k_w``. ``chunk_size`` outputs are differentiated at once (the original code
    took 10 of ImageNet's 1000 at a time). Runs on the model's device, in its dtype, in eval
    mode.

    Examples:
        It agrees with :func:`agop.features.patch_agop`, which reads :math:`W^\top G W` from
        the conv outputs' gradients instead:

        >>> import torch
        >>> from agop.features import patch_agop
        >>> from agop_book.nets import SimpleCNN
        >>> net = SimpleCNN(2, 3, image_size=8, depth=2, width=4, seed=0).double().eval()
        >>> X = torch.rand(5, 2, 8, 8, generator=torch.Generator().manual_seed(0),
        ...                dtype=torch.float64)
        >>> A = brute_force_patch_agop(net, X, "convs.1")
        >>> tuple(A.shape)  # q = 4 channels * 3 * 3
        (36, 36)
        >>> torch.allclose(A, patch_agop(net, X, layers=["convs.1"], device="cpu")["convs.1"])
        True
    """
    convs = conv_layers(model)
    if not isinstance(layer_name, str) or layer_name not in convs:
        raise ValueError(
            f"layer_name must name a Conv2d layer of the model, one of {list(convs)}, "
            f"got {layer_name!r}"
        )
    conv = convs[layer_name]
    param = check_not_meta(next(model.parameters()), "model")
    X = check_images(X, "X", dtype=param.dtype, device=param.device)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    n = X.shape[0]
    g, k_out = conv.groups, conv.out_channels
    patches: list[torch.Tensor] = []
    tolerance = torch.finfo(X.dtype).eps ** 0.5

    def forward(x: torch.Tensor) -> torch.Tensor:
        # the variables: a zero offset on this call's patches, so that the gradient with
        # respect to it is the gradient with respect to the patches, and the patches still
        # depend on x (the output of an earlier call of the same layer reaches f through them)
        p = conv_patches(conv, x)  # (m, P, g q)
        offset = torch.zeros_like(p).requires_grad_()
        patches.append(offset)
        p = p + offset
        m, P, _ = p.shape
        W = conv.weight.detach().reshape(g, k_out // g, -1)
        h = torch.einsum("mpgq,gkq->mpgk", p.reshape(m, P, g, -1), W).reshape(m, P, k_out)
        if conv.bias is not None:
            h = h + conv.bias.detach()
        value = type(conv).forward(conv, x).detach()
        h = h.transpose(1, 2).reshape(value.shape)
        error = float((h.detach() - value).norm() / value.norm().clamp_min(1e-30))
        if error > tolerance:
            raise AssertionError(
                f"explicit patches of {layer_name} do not reproduce the conv "
                f"output (relative error {error:.1e})"
            )
        return value + (h - h.detach())  # the module's value; the patches' gradient

    with _eval_mode(model, "the patch-AGOP"), torch.enable_grad():
        conv.forward = forward  # type: ignore[method-assign,assignment]  # patched for every call
        try:
            f = _forward(model, X, X.shape)  # an error naming X when X does not fit
        finally:
            del conv.forward
        sel = torch.arange(f.shape[1]) if outputs is None else _check_outputs(outputs, f.shape[1])
        agop = torch.zeros(
            conv.weight[0].numel(), conv.weight[0].numel(), dtype=f.dtype, device=f.device
        )
        for c0 in range(0, len(sel), chunk_size):
            chunk = sel[c0 : c0 + chunk_size].to(f.device)
            basis = torch.zeros(len(chunk), *f.shape, dtype=f.dtype, device=f.device)
            basis[torch.arange(len(chunk)), :, chunk] = 1
            grads = torch.autograd.grad(
                f,
                patches,
                grad_outputs=basis,
                retain_graph=True,
                is_grads_batched=True,
                allow_unused=True,
            )
            for grad in grads:
                if grad is not None:
                    grad = grad.reshape(-1, grad.shape[-1] // g)
                    agop += grad.T @ grad
    return agop / n
