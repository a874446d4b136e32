"""Masked-autoencoder pretraining model for Hiera (video and images), as in the paper.

The encoder is the `Hiera` backbone run sparsely (masked units deleted before the first block), Q-pooling
at the first two stage transitions only, with multi-scale fusion; each decoder token predicts the
normalised pixels of its patch, and the loss is the MSE over the masked units only. Parameter names equal
the official `MaskedAutoencoderHiera`'s, so its `mae_hiera_*` checkpoints load as they are.
Letters in shape comments: B batch, U mask units (kept: Uk), C channels, P pixels per prediction.
Details: docs/models.md (hiera_video/models/mae.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

from .hiera import Hiera, HieraBlock


class MAEOutput(NamedTuple):
    """What `MaskedAutoencoderHiera.forward` returns; unpacks like the official `(loss, pred, label, mask)`."""
    loss: torch.Tensor  # scalar MSE over the masked patches
    pred: torch.Tensor  # [num masked patches in the batch, P] predictions of the masked patches
    label: torch.Tensor  # [num masked patches in the batch, P] their (normalised) pixel targets
    mask: torch.Tensor  # [B, U] bool, True = kept (visible to the encoder)


class MaskedAutoencoderHiera(Hiera):
    """Hiera encoder + multi-scale fusion + MAE decoder. Constructor arguments: those of `Hiera`
    (official defaults apart from `q_pool=2`) plus the decoder's and the default mask ratio.

    `decoder_num_heads` defaults to 8, the paper's video decoder; the official constructor's default
    is 16 (head count does not change the weights, so checkpoints load either way)."""

    def __init__(self, decoder_embed_dim: int = 512, decoder_depth: int = 8, decoder_num_heads: int = 8,
                 mask_ratio: float = 0.9, norm_pix_loss: bool = True, q_pool: int = 2, **kwargs):
        kwargs.setdefault("num_classes", 0)
        super().__init__(q_pool=q_pool, **kwargs)
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.config.update(decoder_embed_dim=decoder_embed_dim, decoder_depth=decoder_depth,
                           decoder_num_heads=decoder_num_heads, mask_ratio=mask_ratio, norm_pix_loss=norm_pix_loss)
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        eps = self.config["layer_norm_eps"]
        # The classifier's final norm and head are not part of an MAE (as in the official model).
        del self.norm, self.head
        encoder_dim = self.blocks[-1].dim_out
        self.encoder_norm = nn.LayerNorm(encoder_dim, eps=eps)
        # Mask unit and token grid after the q_pool poolings (e.g. 1x2x2 and 8x14x14 for 16x224 video).
        self.unit_final = [m // s**q_pool for m, s in zip(self.mask_unit_size, self.q_stride)]
        self.grid_final = [t // s**q_pool for t, s in zip(self.tokens_spatial_shape, self.q_stride)]

        # Stage 1 and 2 maps -> the final grid: a conv whose kernel equals its stride, per mask unit.
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[len(self.q_stride)]
        self.multi_scale_fusion_heads = nn.ModuleList()
        unit = list(self.mask_unit_size)
        for end in self.stage_ends[:q_pool]:
            kernel = [u // f for u, f in zip(unit, self.unit_final)]
            self.multi_scale_fusion_heads.append(conv(self.blocks[end].dim_out, encoder_dim, kernel, stride=kernel))
            unit = [u // s for u, s in zip(unit, self.q_stride)]
        self.multi_scale_fusion_heads.append(nn.Identity())  # the last stage is already there

        self.decoder_embed = nn.Linear(encoder_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.grid_final), decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList([
            HieraBlock(decoder_embed_dim, decoder_embed_dim, decoder_num_heads, self.config["mlp_ratio"], eps=eps)
            for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=eps)
        # One prediction per final-grid token: a pred_stride x pred_stride patch (of one frame for video).
        self.pred_stride = self.config["patch_stride"][-1] * self.q_stride[-1] ** q_pool
        self.decoder_pred = nn.Linear(decoder_embed_dim, self.pred_stride ** 2 * self.config["in_chans"])
        self._init_mae_weights()

    def _init_mae_weights(self) -> None:
        # As the official MAE: xavier linears with zero bias, unit norms, the patch conv like a linear.
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.zeros_(m.bias)
                nn.init.ones_(m.weight)
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))

    def no_weight_decay(self) -> set[str]:
        return super().no_weight_decay() | {"mask_token", "decoder_pos_embed"}

    def reset_classifier(self, num_classes: int) -> None:
        raise TypeError("an MAE has no classifier: build the classifier with create_model(<classifier name>, "
                        "pretrained=<this MAE's checkpoint>)")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise TypeError("an MAE has no head; use forward(x) for the loss, or forward_encoder(x, mask)")

    # ----------------------------------------------------------------------------------------
    def fusion_branches(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """The terms of the multi-scale fusion, each [B, Uk, *unit_final, C_enc]: stage 1, ..., stage
        q_pool through their heads, then the last stage (what the decoder reads is their sum)."""
        maps = self.forward_intermediates(x, mask)  # per stage [B, Uk, *unit_i, C_i]
        maps = maps[:self.q_pool] + maps[-1:]  # stages after the last pooling share its grid
        out = []
        for head, m in zip(self.multi_scale_fusion_heads, maps):
            if not isinstance(head, nn.Identity):
                B, Uk = m.shape[:2]
                # [B, Uk, *unit, C] -> [B*Uk, C, *unit] -> conv -> [B, Uk, *unit_final, C_enc]
                m = head(m.flatten(0, 1).movedim(-1, 1)).movedim(1, -1).unflatten(0, (B, Uk))
            out.append(m)
        return out

    def forward_encoder(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sparse encoder and multi-scale fusion: [B, Uk, *unit_final, C_enc] for the kept units."""
        return self.encoder_norm(sum(self.fusion_branches(x, mask)))

    def forward_decoder(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Kept-unit latents [B, Uk, *unit_final, C_enc] -> predictions [B, N_final, P] in spatial order."""
        x = self.decoder_embed(latent)  # [B, Uk, *unit_final, C_dec]
        B, C = x.shape[0], x.shape[-1]
        # Every unit starts as the mask token; the kept ones get their latents (row-major, like the encoder).
        full = self.mask_token.to(x.dtype).expand(B, self.num_mask_units, *self.unit_final, C).clone()
        full[mask] = x.flatten(0, 1)
        x = _units_to_grid(full, self.mask_spatial_shape, self.unit_final).flatten(1, -2)  # [B, N_final, C_dec]
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))

    def pixel_targets(self, x: torch.Tensor, normalize: bool | None = None) -> torch.Tensor:
        """[B, C, (T,) H, W] -> per-patch pixels [B, N_final, P] in the official layout, normalised per
        patch (mean 0, unit unbiased variance, eps 1e-6) when `normalize` (default: `norm_pix_loss`)."""
        s = self.pred_stride
        if x.dim() == 5:
            # Time-strided target: the first frame of each token. [B, C, T', H, W] -> [B, T'*h*w, s*s*C]
            x = x[:, :, ::self.config["patch_stride"][0]]
            label = x.unfold(3, s, s).unfold(4, s, s).permute(0, 2, 3, 4, 5, 6, 1).flatten(1, 3).flatten(2)
        else:
            # Images put channels first inside a patch (as the official code does): [B, h*w, C*s*s]
            label = x.permute(0, 2, 3, 1).unfold(1, s, s).unfold(2, s, s).flatten(1, 2).flatten(2)
        if self.norm_pix_loss if normalize is None else normalize:
            mean, var = label.mean(-1, keepdim=True), label.var(-1, keepdim=True)
            label = (label - mean) / (var + 1.0e-6) ** 0.5
        return label

    def token_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Unit mask [B, U] -> prediction-token mask [B, N_final] in spatial order (True = kept)."""
        B = mask.shape[0]
        m = mask.view(B, *self.mask_spatial_shape)
        for d, r in enumerate(self.unit_final):
            m = m.repeat_interleave(r, dim=d + 1)
        return m.flatten(1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                mask_ratio: float | None = None) -> MAEOutput:
        """Loss on the masked patches. `mask` [B, U] (True = keep); by default a random one at
        `mask_ratio` (default: the model's), drawn from the global RNG."""
        if mask is None:
            ratio = self.mask_ratio if mask_ratio is None else mask_ratio
            mask = self.get_random_mask(x.shape[0], ratio, device=x.device)
        if bool(mask.all()):
            raise ValueError("the mask has no masked unit: the MAE loss is over masked units only "
                             "(use mask_ratio > 0, or forward_encoder for the dense encoder)")
        pred = self.forward_decoder(self.forward_encoder(x, mask), mask)  # [B, N_final, P]
        masked = ~self.token_mask(mask)
        label = self.pixel_targets(x)[masked]
        pred = pred[masked]
        loss = (pred.float() - label.float()).pow(2).mean()
        return MAEOutput(loss, pred, label, mask)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The input as the model sees and completes it, for pictures: visible patches kept, masked
        patches predicted, in input pixels (with normalised targets, each predicted patch is given
        the true patch's mean and std, the usual MAE visualisation). Video: one frame per token,
        [B, C, T', H, W]; images [B, C, H, W]."""
        pred = self.forward_decoder(self.forward_encoder(x, mask), mask).float()  # [B, N_final, P]
        raw = self.pixel_targets(x.float(), normalize=False)
        if self.norm_pix_loss:
            pred = pred * (raw.var(-1, keepdim=True) + 1.0e-6) ** 0.5 + raw.mean(-1, keepdim=True)
        patches = torch.where(self.token_mask(mask).unsqueeze(-1), raw, pred)
        return self.patches_to_pixels(patches, x.shape)

    def patches_to_pixels(self, patches: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """Inverse of the target layout: [B, N_final, P] -> [B, C, T', H, W] (video) or [B, C, H, W]."""
        s, C = self.pred_stride, self.config["in_chans"]
        B = patches.shape[0]
        if len(shape) == 5:
            t, h, w = self.grid_final
            x = patches.view(B, t, h, w, s, s, C)
            return x.permute(0, 6, 1, 2, 4, 3, 5).reshape(B, C, t, h * s, w * s)
        h, w = self.grid_final
        x = patches.view(B, h, w, C, s, s)
        return x.permute(0, 3, 1, 4, 2, 5).reshape(B, C, h * s, w * s)


def _units_to_grid(x: torch.Tensor, units: Sequence[int], unit: Sequence[int]) -> torch.Tensor:
    """[B, U, *unit, C] with units in row-major order -> [B, *(units * unit), C] in spatial order."""
    B, C, D = x.shape[0], x.shape[-1], len(units)
    x = x.view(B, *units, *unit, C)
    # axes: unit digit of dim d at 1 + d, inside-unit digit at 1 + D + d -> interleave them
    perm = [0] + [a for d in range(D) for a in (1 + d, 1 + D + d)] + [2 * D + 1]
    return x.permute(perm).reshape(B, *[u * k for u, k in zip(units, unit)], C)
