"""Parameter and FLOP counts, computed on the meta device so that even Hiera-H costs no memory or time.

FLOPs follow the convention of the Hiera paper (and fvcore): one fused multiply-add counts as one
FLOP. `torch.utils.flop_counter` counts two, hence the halving. Attention matmuls are included.
"""

from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: torch.nn.Module, batch_size: int = 1, mask: torch.Tensor | None = None) -> int:
    """Multiply-adds of one forward pass of `batch_size` clips at the model's input size.

    Runs a meta-device copy: on CPU tensors, PyTorch's CPU flash-attention kernel is not known to the
    FLOP counter and attention would be missed; on meta, SDPA's cost is counted.
    """
    meta_model = copy.deepcopy(model).to("meta") if next(model.parameters()).device.type != "meta" else model
    x = torch.empty(batch_size, meta_model.patch_embed.proj.in_channels, *meta_model.input_size, device="meta")
    if mask is not None:
        mask = mask.to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_model(x, mask=mask)
    return counter.get_total_flops() // 2
