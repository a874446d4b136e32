"""The Hiera backbone (Ryali et al., ICML 2023) for images (2-D) and video (3-D).

Parameter names and numerics follow the official implementation (PyPI `hiera-transformer`), so its
checkpoints load with no renaming and give the same outputs. Tokens are kept window-major (our order,
chosen for speed): Mask Unit Attention is a reshape to 4-D tensors that reach the fused
`F.scaled_dot_product_attention` kernels, and Q-pooling is a max over one axis of a view.
Letters in shape comments: B batch, N tokens, C channels, T/H/W time/height/width, U mask units,
K tokens per mask unit, D number of spatial dims (2 or 3), L Q-pooling levels.
Details: docs/models.md (hiera_video/models/hiera.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


class TokenLayout:
    """Maps between spatial order `[B, *grid, C]` and Hiera's window-major order `[B, N, C]`.

    Along each spatial dim d, a token position p is read as digits (unit, s^L, ..., s^1), coarse to
    fine, with p = unit * q^L + sum_l s^l * q^(l-1). Window-major order is
    (unit_1..unit_D, s^1_1..s^1_D, ..., s^L_1..s^L_D): the mask unit first, then the stride digits
    with the finest (pooled first) outermost, so that pooling level 1 is `view(.., q, K / q, ..).amax`.
    This is the order the official `Unroll` produces, with mask units moved from innermost to
    outermost.
    """

    def __init__(self, grid: Sequence[int], q_stride: Sequence[int], levels: int):
        self.grid = tuple(grid)
        self.q_stride = tuple(q_stride)
        self.levels = levels
        self.units = tuple(g // q**levels for g, q in zip(grid, q_stride))
        self.num_units = math.prod(self.units)

    def unit_tokens(self, pooled: int) -> tuple[int, ...]:
        """Shape of one mask unit, in tokens, after `pooled` Q-poolings."""
        return tuple(q ** (self.levels - pooled) for q in self.q_stride)

    def unroll(self, x: torch.Tensor, channels_first: bool = False) -> torch.Tensor:
        """[B, C, *grid] (channels_first) or [B, *grid, C] -> [B, N, C] in window-major order."""
        D, L = len(self.grid), self.levels
        B, C = x.shape[0], (x.shape[1] if channels_first else x.shape[-1])
        digits = [n for u, q in zip(self.units, self.q_stride) for n in (u, *[q] * L)]
        first = 2 if channels_first else 1  # axis of the first spatial digit
        x = x.reshape(B, C, *digits) if channels_first else x.reshape(B, *digits, C)

        def axis(d: int, level: int) -> int:  # level 0 is the unit digit, then s^L ... s^1
            return first + d * (L + 1) + (0 if level == 0 else L - level + 1)

        perm = [0] + [axis(d, 0) for d in range(D)]
        perm += [axis(d, level) for level in range(1, L + 1) for d in range(D)]
        perm += [1 if channels_first else x.dim() - 1]
        return x.permute(perm).reshape(B, -1, C)

    def reroll(self, x: torch.Tensor, pooled: int) -> torch.Tensor:
        """[B, N, C] in window-major order after `pooled` Q-poolings -> [B, *grid / q^pooled, C]."""
        D, R = len(self.grid), self.levels - pooled
        B, C = x.shape[0], x.shape[-1]
        # axes: unit d at 1 + d; remaining level j (1 = outermost) of dim d at 1 + D * j + d
        x = x.view(B, *self.units, *(self.q_stride * R), C)
        perm = [0]
        for d in range(D):
            perm += [1 + d] + [1 + D * j + d for j in range(R, 0, -1)]
        perm.append(x.dim() - 1)
        size = [u * k for u, k in zip(self.units, self.unit_tokens(pooled))]
        return x.permute(perm).reshape(B, *size, C)

    def reroll_units(self, x: torch.Tensor, pooled: int) -> torch.Tensor:
        """[B, U*K, C] -> [B, U, *unit_tokens, C]: each mask unit in spatial order (for masked input)."""
        D, R = len(self.grid), self.levels - pooled
        B, N, C = x.shape
        unit = self.unit_tokens(pooled)
        x = x.view(B, N // math.prod(unit), *(self.q_stride * R), C)
        perm = [0, 1]
        for d in range(D):
            perm += [2 + D * (j - 1) + d for j in range(R, 0, -1)]
        perm.append(x.dim() - 1)
        return x.permute(perm).reshape(B, -1, *unit, C)


def pool_windows(x: torch.Tensor, stride: int, num_units: int) -> torch.Tensor:
    """Max-pool the first stride level of every mask unit: [B, U*K, C] -> [B, U*K/stride, C]."""
    B, N, C = x.shape
    return x.view(B, num_units, stride, N // (num_units * stride), C).amax(2).view(B, -1, C)


class MaskUnitAttention(nn.Module):
    """Multi-head attention inside each mask unit (local) or over all tokens (global), with optional
    Q-pooling. Input is `[B, U*K, C]` in window-major order."""

    def __init__(self, dim: int, dim_out: int, heads: int, q_stride: int = 1, window_size: int = 0,
                 use_mask_unit_attn: bool = False):
        super().__init__()
        self.dim, self.dim_out, self.heads = dim, dim_out, heads
        self.q_stride = q_stride  # flattened, e.g. 2x2 = 4
        self.window_size = window_size  # tokens per mask unit after this block's pooling
        self.use_mask_unit_attn = use_mask_unit_attn
        self.head_dim = dim_out // heads
        self.qkv = nn.Linear(dim, 3 * dim_out)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        # Mask units present (all, or the kept ones); global attention without pooling (e.g. an MAE
        # decoder, window_size 0) does not need it.
        U = N // (self.q_stride * self.window_size) if self.window_size else 1
        if self.use_mask_unit_attn:
            # Windows fold into the batch, so SDPA gets 4-D tensors and can use fused kernels.
            # [B, U*K, 3*C] -> [3, B*U, heads, K, head_dim]
            qkv = self.qkv(x).view(B * U, N // U, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        else:
            # [B, N, 3*C] -> [3, B, heads, N, head_dim]
            qkv = self.qkv(x).view(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.q_stride > 1:
            # The first stride level is outermost inside each unit, so this is a 2x2 max-pool.
            if self.use_mask_unit_attn:  # [B*U, h, K, d] -> [B*U, h, K/s, d]
                q = q.unflatten(2, (self.q_stride, -1)).amax(2)
            else:  # [B, h, U*K, d] -> [B, h, U*K/s, d]
                q = q.unflatten(2, (U, self.q_stride, -1)).amax(3).flatten(2, 3)
        x = F.scaled_dot_product_attention(q, k, v)
        # [B', heads, K', head_dim] -> [B, N', C]
        x = x.transpose(1, 2).reshape(B, -1, self.dim_out)
        return self.proj(x)


class Mlp(nn.Module):
    """Two-layer MLP with GELU (parameter names fc1/fc2 as in timm and the official checkpoints)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample, rescale the kept ones."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class HieraBlock(nn.Module):
    """Pre-norm transformer block; the first block of a stage widens channels and Q-pools."""

    def __init__(self, dim: int, dim_out: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 eps: float = 1e-6, q_stride: int = 1, window_size: int = 0, use_mask_unit_attn: bool = False):
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MaskUnitAttention(dim, dim_out, heads, q_stride, window_size, use_mask_unit_attn)
        self.norm2 = nn.LayerNorm(dim_out, eps=eps)
        self.mlp = Mlp(dim_out, int(dim_out * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_norm = self.norm1(x)
        if self.dim != self.dim_out:
            # The residual path is projected and pooled like the queries.
            x = self.proj(x_norm)
            if self.attn.q_stride > 1:
                units = x.shape[1] // (self.attn.q_stride * self.attn.window_size)
                x = pool_windows(x, self.attn.q_stride, units)
        x = x + self.drop_path(self.attn(x_norm))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Strided conv that cuts the input into tokens; masked regions are zeroed first so that the
    overlapping kernels do not leak pixels of deleted mask units."""

    def __init__(self, in_chans: int, dim: int, kernel: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int]):
        super().__init__()
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[len(kernel)]
        self.proj = conv(in_chans, dim, kernel_size=tuple(kernel), stride=tuple(stride), padding=tuple(padding))

    def forward(self, x: torch.Tensor, unit_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, C_in, *input_size] -> [B, C, *grid]
        if unit_mask is not None:
            # unit_mask: [B, 1, *units] -> nearest-upsampled to the input size
            keep = F.interpolate(unit_mask.to(x.dtype), size=x.shape[2:])
            x = x * keep
        return self.proj(x)


class Head(nn.Module):
    """Dropout and a linear classifier. Returns logits: activations belong to the consumer
    (softmax for ensembling, sigmoid for AVA), never hidden in eval mode."""

    def __init__(self, dim: int, num_classes: int, dropout_rate: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.projection = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.dropout(x))


class Hiera(nn.Module):
    """Hiera classifier. Constructor arguments are those of the official `hiera.Hiera` (so an
    official `config.json` builds it), with video defaults (Hiera-B, 16x224, Kinetics-400).

    `mask` arguments are boolean `[B, num_mask_units]` in spatial unit order, True = keep; every row
    must keep the same number of units. Masked units are deleted, not computed (sparse MAE).
    """

    def __init__(
        self,
        input_size: Sequence[int] = (16, 224, 224),
        in_chans: int = 3,
        embed_dim: int = 96,  # stage-1 width; doubles at each stage transition (dim_mul)
        num_heads: int = 1,  # stage-1 heads; doubles at each stage transition (head_mul)
        num_classes: int = 400,  # 0: no classifier, forward returns pooled features
        stages: Sequence[int] = (2, 3, 16, 3),
        q_pool: int = 3,  # number of stage transitions that Q-pool
        q_stride: Sequence[int] = (1, 2, 2),  # time is never pooled
        mask_unit_size: Sequence[int] = (1, 8, 8),  # in tokens; must equal q_stride ** (len(stages) - 1)
        mask_unit_attn: Sequence[bool] = (True, True, False, False),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
        patch_kernel: Sequence[int] = (3, 7, 7),
        patch_stride: Sequence[int] = (2, 4, 4),
        patch_padding: Sequence[int] = (1, 3, 3),
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        head_dropout: float = 0.0,
        head_init_scale: float = 0.001,
        sep_pos_embed: bool = True,  # separate spatial + temporal position embeddings (video)
        layer_norm_eps: float = 1e-6,
    ):
        super().__init__()
        # Plain values only: saved with checkpoints so that a checkpoint alone rebuilds its model.
        self.config = dict(
            input_size=list(input_size), in_chans=in_chans, embed_dim=embed_dim, num_heads=num_heads,
            num_classes=num_classes, stages=list(stages), q_pool=q_pool, q_stride=list(q_stride),
            mask_unit_size=list(mask_unit_size), mask_unit_attn=list(mask_unit_attn), dim_mul=dim_mul,
            head_mul=head_mul, patch_kernel=list(patch_kernel), patch_stride=list(patch_stride),
            patch_padding=list(patch_padding), mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate,
            head_dropout=head_dropout, head_init_scale=head_init_scale, sep_pos_embed=sep_pos_embed,
            layer_norm_eps=layer_norm_eps)
        levels = len(stages) - 1
        self.tokens_spatial_shape = [i // s for i, s in zip(input_size, patch_stride)]
        _check_geometry(input_size, patch_kernel, patch_stride, patch_padding, q_stride, mask_unit_size,
                        stages, q_pool, mask_unit_attn, sep_pos_embed, self.tokens_spatial_shape)
        self.input_size = tuple(input_size)
        self.num_classes = num_classes
        self.q_pool, self.q_stride = q_pool, tuple(q_stride)
        self.mask_unit_size = tuple(mask_unit_size)
        self.layout = TokenLayout(self.tokens_spatial_shape, q_stride, levels)
        self.mask_spatial_shape = list(self.layout.units)
        self.num_mask_units = self.layout.num_units
        self.stage_ends = [sum(stages[:i]) - 1 for i in range(1, len(stages) + 1)]
        self.grad_checkpointing = False

        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_kernel, patch_stride, patch_padding)
        self.sep_pos_embed = sep_pos_embed
        if sep_pos_embed:
            t, h, w = self.tokens_spatial_shape
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, h * w, embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, t, embed_dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.tokens_spatial_shape), embed_dim))

        depth = sum(stages)
        q_pool_blocks = [end + 1 for end in self.stage_ends[:q_pool]]
        flat_q_stride = math.prod(q_stride)
        window_size = math.prod(mask_unit_size)
        # Plain floats, not torch.linspace(...).item(): that fails under `with torch.device("meta")`.
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList()
        stage, dim, heads = 0, embed_dim, num_heads
        for i in range(depth):
            dim_out = dim
            # Attention kind lags the stage by one block: a stage's first block still attends within
            # mask units of the previous stage's kind, then pools (as in the official code).
            use_mask_unit_attn = mask_unit_attn[stage]
            if i - 1 in self.stage_ends:
                dim_out = int(dim * dim_mul)
                heads = int(heads * head_mul)
                stage += 1
                if i in q_pool_blocks:
                    window_size //= flat_q_stride
            self.blocks.append(HieraBlock(
                dim, dim_out, heads, mlp_ratio, dpr[i], layer_norm_eps,
                q_stride=flat_q_stride if i in q_pool_blocks else 1, window_size=window_size,
                use_mask_unit_attn=use_mask_unit_attn))
            dim = dim_out
        self.num_features = dim
        self.norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.head = Head(dim, num_classes, dropout_rate=head_dropout)
        self._init_weights(head_init_scale)

    # ----------------------------------------------------------------------------------------
    def _init_weights(self, head_init_scale: float) -> None:
        # Same scheme as the official code (including its 0.02 biases), so training from scratch
        # behaves the same.
        for p in ([self.pos_embed_spatial, self.pos_embed_temporal] if self.sep_pos_embed else [self.pos_embed]):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.constant_(m.bias, 0.02)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.bias, 0.02)
                nn.init.constant_(m.weight, 1.0)
        self._init_head(head_init_scale)

    def _init_head(self, scale: float) -> None:
        # A near-zero classifier starts finetuning from near-uniform predictions.
        if isinstance(self.head.projection, nn.Linear):
            nn.init.trunc_normal_(self.head.projection.weight, std=0.02)
            nn.init.constant_(self.head.projection.bias, 0.02)
            with torch.no_grad():
                self.head.projection.weight.mul_(scale)
                self.head.projection.bias.mul_(scale)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one (0 removes it)."""
        self.num_classes = self.config["num_classes"] = num_classes
        device = self.norm.weight.device
        self.head = Head(self.num_features, num_classes, self.config["head_dropout"]).to(device)
        self._init_head(self.config["head_init_scale"])

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass: less memory, ~30% more time."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed_spatial", "pos_embed_temporal"} if self.sep_pos_embed else {"pos_embed"}

    def get_random_mask(self, batch_size: int, mask_ratio: float, device=None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
        """Random per-sample mask over mask units: `[B, num_mask_units]` bool, True = keep; the same
        number kept in every row (int(U * (1 - mask_ratio)), as the official code)."""
        U = self.num_mask_units
        keep = int(U * (1 - mask_ratio))
        order = torch.rand(batch_size, U, generator=generator).to(device).argsort(dim=1)
        mask = torch.zeros(batch_size, U, dtype=torch.bool, device=device)
        mask.scatter_(1, order[:, :keep], True)
        return mask

    def get_pos_embed(self) -> torch.Tensor:
        """Position embedding in spatial order: [1, *grid, C]."""
        C = self.patch_embed.proj.out_channels
        if self.sep_pos_embed:
            t, h, w = self.tokens_spatial_shape
            # [1, H*W, C] + [1, T, C] -> [1, T, H, W, C]
            pos = self.pos_embed_spatial.view(1, 1, h * w, C) + self.pos_embed_temporal.view(1, t, 1, C)
            return pos.view(1, t, h, w, C)
        return self.pos_embed.view(1, *self.tokens_spatial_shape, C)

    # ----------------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        expected = (self.patch_embed.proj.in_channels, *self.input_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"Hiera expects input [B, {', '.join(map(str, expected))}] (channels, "
                             f"{'frames, ' if len(self.input_size) == 3 else ''}height, width), got "
                             f"{list(x.shape)}; build the model with input_size=... to change it")
        if mask is not None and tuple(mask.shape) != (x.shape[0], self.num_mask_units):
            raise ValueError(f"mask must be [B, num_mask_units] = [{x.shape[0]}, {self.num_mask_units}] "
                             f"(True = keep), got {list(mask.shape)}")

    def _encode(self, x: torch.Tensor, mask: torch.Tensor | None, intermediates: list | None):
        """Patch embed, position embed, unroll, drop masked units, run the blocks.
        Returns [B, N, C] in window-major order and the number of Q-poolings applied."""
        self._check_input(x, mask)
        B = x.shape[0]
        unit_mask = None if mask is None else mask.view(B, 1, *self.mask_spatial_shape)
        x = self.patch_embed(x, unit_mask)  # [B, C, *grid]
        x = self.layout.unroll(x, channels_first=True) + self.layout.unroll(self.get_pos_embed())  # [B, N, C]
        if mask is not None:
            # Delete the masked units: [B, U*K, C] -> [B, kept*K, C]
            x = x.view(B, self.num_mask_units, -1, x.shape[-1])[mask].view(B, -1, x.shape[-1])
        pooled = 0
        for i, blk in enumerate(self.blocks):
            if blk.attn.q_stride > 1:
                pooled += 1
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
            if intermediates is not None and i in self.stage_ends:
                if mask is None:
                    intermediates.append(self.layout.reroll(x, pooled))  # [B, *grid', C]
                else:
                    intermediates.append(self.layout.reroll_units(x, pooled))  # [B, kept, *unit', C]
        return x, pooled

    def forward_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Last-stage tokens (before the final norm). Without a mask: [B, N, C] in spatial order
        (T, H, W). With a mask: [B, kept_units * K, C], unit by unit."""
        x, pooled = self._encode(x, mask, None)
        if mask is None and pooled < self.layout.levels:
            # Only when not every stride level was pooled (q_pool < stages - 1) is the order not
            # already spatial.
            x = self.layout.reroll(x, pooled).flatten(1, -2)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """[B, N, C] tokens -> mean-pooled, normalised [B, C] (pre_logits) or logits [B, classes]."""
        x = self.norm(x.mean(dim=1))
        return x if pre_logits else self.head(x)

    def forward_intermediates(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each stage's output, before the final norm. Without a mask, in spatial order:
        [B, T, H, W, C] for video, [B, H, W, C] for images. With a mask, unit by unit:
        [B, kept_units, *unit_size, C]."""
        intermediates: list[torch.Tensor] = []
        self._encode(x, mask, intermediates)
        return intermediates

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, num_classes] (pooled features [B, C] when num_classes is 0)."""
        return self.forward_head(self.forward_features(x, mask))


def _check_geometry(input_size, patch_kernel, patch_stride, patch_padding, q_stride, mask_unit_size, stages,
                    q_pool, mask_unit_attn, sep_pos_embed, tokens) -> None:
    """Reject configurations the unroll scheme cannot represent, with the reason."""
    D = len(input_size)
    for name, value in [("patch_kernel", patch_kernel), ("patch_stride", patch_stride),
                        ("patch_padding", patch_padding), ("q_stride", q_stride),
                        ("mask_unit_size", mask_unit_size)]:
        if len(value) != D:
            raise ValueError(f"{name}={list(value)} has {len(value)} dims but input_size={list(input_size)} has {D}")
    if D not in (2, 3):
        raise ValueError(f"input_size={list(input_size)}: Hiera supports 2-D images and 3-D video")
    conv_out = [(i + 2 * p - k) // s + 1 for i, k, s, p in zip(input_size, patch_kernel, patch_stride, patch_padding)]
    if conv_out != tokens:
        raise ValueError(f"input_size={list(input_size)} with patch_stride={list(patch_stride)} gives a "
                         f"{conv_out} token grid from the conv but {tokens} from the stride; use sizes "
                         f"divisible by the patch stride")
    levels = len(stages) - 1
    if list(mask_unit_size) != [q**levels for q in q_stride]:
        raise ValueError(f"mask_unit_size={list(mask_unit_size)} must equal q_stride ** {levels} = "
                         f"{[q**levels for q in q_stride]} (q_stride={list(q_stride)}, {len(stages)} stages)")
    if any(t % m for t, m in zip(tokens, mask_unit_size)):
        unit_px = [m * s for m, s in zip(mask_unit_size, patch_stride)]
        raise ValueError(f"input_size={list(input_size)} gives a {tokens} token grid, not divisible into "
                         f"mask units of {list(mask_unit_size)} tokens: each input dim must be a multiple "
                         f"of {unit_px}")
    if not 0 <= q_pool < len(stages):
        raise ValueError(f"q_pool={q_pool} must be in [0, {len(stages) - 1}]")
    if len(mask_unit_attn) != len(stages):
        raise ValueError(f"mask_unit_attn={list(mask_unit_attn)} needs one flag per stage ({len(stages)})")
    if sep_pos_embed and D != 3:
        raise ValueError("sep_pos_embed=True needs video input (3-D input_size)")
