"""Parameter and FLOP counts, computed on the meta device so that even Hiera-H costs no memory or time.

FLOPs follow the convention of the Hiera paper (and fvcore): one fused multiply-add counts as one
FLOP. `torch.utils.flop_counter` counts two, hence the halving. Attention matmuls are included.
"""

from __future__ import annotations

import copy

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: torch.nn.Module, batch_size: int = 1, mask: torch.Tensor | None = None,
                forward: str = "model") -> int:
    """Multiply-adds of one forward pass of `batch_size` clips at the model's input size.

    forward: "model" (the whole forward: logits, or an MAE's loss) or "encoder" (the backbone only:
    `forward_features`, or an MAE's sparse encoder with its multi-scale fusion).

    Without a mask this runs a meta-device copy (no memory, no time). Deleting masked units is
    data-dependent indexing, which the meta device cannot do, so with a mask it runs a CPU copy on
    uninitialised weights with the math attention kernel (PyTorch's CPU flash kernel is unknown to the
    FLOP counter; the math kernel's matmuls are counted).
    """
    device = "meta" if mask is None else "cpu"
    on = next(model.parameters()).device.type
    if on == device:
        copy_model = model
    elif on == "meta":
        copy_model = copy.deepcopy(model).to_empty(device=device)
    else:
        copy_model = copy.deepcopy(model).to(device)
    x = torch.randn(batch_size, copy_model.patch_embed.proj.in_channels, *copy_model.input_size, device=device)
    if mask is not None:
        mask = mask.to(device).expand(batch_size, -1)
    if forward == "encoder":
        run = getattr(copy_model, "forward_encoder", None) or copy_model.forward_features
    elif forward == "model":
        run = copy_model
    else:
        raise ValueError(f"forward must be 'model' or 'encoder', got {forward!r}")
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        run(x, mask=mask)
    return counter.get_total_flops() // 2
