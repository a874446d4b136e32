"""Action detection on Hiera (AVA): RoIAlign in plain torch and the RoI head of the paper.

`HieraAVA` is a Hiera backbone (the classifier without its head, so Kinetics checkpoints load with
their usual key names and layer-wise lr decay applies unchanged) plus `roi_head`: the last stage's map
in spatial order, averaged over time, RoIAlign (aligned, 7x7) per person box, spatial max-pool,
dropout, linear. It returns one row of logits per box: the loss (sigmoid multi-label by default)
belongs to the training loop.

`roi_align` follows torchvision's `roi_align(..., aligned=True)` exactly (same sampling grid, same
bilinear rules at the borders), written in torch ops because torchvision does not import everywhere.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...models.adapt import load_pretrained
from ...models.factory import model_pretrained_cfg, read_pretrained, register_checkpoint_class
from ...models.hiera import Hiera
from ...models.official import encoder_config, is_mae_config
from ...models.registry import variant_config


def _bilinear(flat: torch.Tensor, H: int, W: int, base: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """torchvision's RoIAlign interpolation at points y, x (same shape S) of the maps in `flat`
    [C, N * H * W]; `base` (broadcastable to S) is each point's map offset n * H * W. Zero outside
    [-1, H] x [-1, W], clamped to the border inside it. Returns [C, *S]."""
    outside = (y < -1.0) | (y > H) | (x < -1.0) | (x > W)
    y, x = y.clamp(min=0), x.clamp(min=0)
    y0, x0 = y.floor().long(), x.floor().long()
    # A point on or past the last row/column uses that row/column only.
    y_edge, x_edge = y0 >= H - 1, x0 >= W - 1
    y0, x0 = y0.clamp(max=H - 1), x0.clamp(max=W - 1)
    y = torch.where(y_edge, y0.to(y.dtype), y)
    x = torch.where(x_edge, x0.to(x.dtype), x)
    y1, x1 = (y0 + 1).clamp(max=H - 1), (x0 + 1).clamp(max=W - 1)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx

    def at(yy, xx):  # [C, *S]
        return flat[:, (base + yy * W + xx).reshape(-1)].reshape(flat.shape[0], *yy.shape)

    value = (hy * hx) * at(y0, x0) + (hy * lx) * at(y0, x1) + (ly * hx) * at(y1, x0) + (ly * lx) * at(y1, x1)
    return value.masked_fill(outside, 0.0)


def roi_align(features: torch.Tensor, boxes: torch.Tensor, batch_index: torch.Tensor,
              output_size: int = 7, spatial_scale: float = 1.0, sampling_ratio: int = 0,
              aligned: bool = True) -> torch.Tensor:
    """RoIAlign: features [N, C, H, W], boxes [K, 4] (x1, y1, x2, y2 in input coordinates, scaled by
    `spatial_scale` to the feature map), batch_index [K] -> [K, C, output_size, output_size].

    `sampling_ratio` <= 0 takes ceil(roi size / output size) samples per bin and axis, per box, as
    torchvision; boxes with the same sample grid are computed together."""
    N, C, H, W = features.shape
    K = len(boxes)
    out = features.new_zeros(K, C, output_size, output_size)
    if K == 0:
        return out
    flat = features.permute(1, 0, 2, 3).reshape(C, N * H * W)
    offset = 0.5 if aligned else 0.0
    b = boxes.to(features.dtype) * spatial_scale - offset  # [K, 4]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if not aligned:  # legacy mode forces at least one pixel
        w, h = w.clamp(min=1.0), h.clamp(min=1.0)
    bin_w, bin_h = w / output_size, h / output_size
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full((K,), sampling_ratio, dtype=torch.long)
    else:
        grid_h = torch.ceil(h / output_size).long().clamp(min=1).cpu()
        grid_w = torch.ceil(w / output_size).long().clamp(min=1).cpu()
    p = torch.arange(output_size, device=features.device, dtype=features.dtype)
    for gh, gw in sorted(set(zip(grid_h.tolist(), grid_w.tolist()))):
        rows = ((grid_h == gh) & (grid_w == gw)).nonzero().squeeze(1).to(boxes.device)
        R = len(rows)
        # Sample positions: bin p, sample i -> start + (p + (i + 0.5) / grid) * bin.
        iy = (torch.arange(gh, device=features.device, dtype=features.dtype) + 0.5) / gh
        ix = (torch.arange(gw, device=features.device, dtype=features.dtype) + 0.5) / gw
        ys = b[rows, 1, None, None] + (p[:, None] + iy[None, :]) * bin_h[rows, None, None]  # [R, out, gh]
        xs = b[rows, 0, None, None] + (p[:, None] + ix[None, :]) * bin_w[rows, None, None]  # [R, out, gw]
        shape = (R, output_size, gh, output_size, gw)
        yy = ys[:, :, :, None, None].expand(shape)
        xx = xs[:, None, None, :, :].expand(shape)
        base = (batch_index[rows].to(features.device) * (H * W)).view(R, 1, 1, 1, 1)
        v = _bilinear(flat, H, W, base, yy, xx)  # [C, R, out, gh, out, gw]
        out[rows] = v.mean(dim=(3, 5)).transpose(0, 1)  # average the samples of each bin
    return out


class RoIHead(nn.Module):
    """Per-box action logits from a [B, C, H, W] map: RoIAlign, spatial max-pool, dropout, linear."""

    def __init__(self, dim: int, num_classes: int = 80, resolution: int = 7, dropout: float = 0.5):
        super().__init__()
        self.resolution = resolution
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.projection.weight, std=0.01)
        nn.init.zeros_(self.projection.bias)

    def forward(self, feature: torch.Tensor, boxes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        H, W = feature.shape[-2:]
        # Boxes are normalised to the clip: scale them to the map's grid directly.
        rois = boxes * boxes.new_tensor([W, H, W, H])
        pooled = roi_align(feature, rois, batch_index, self.resolution, 1.0, 0, aligned=True)  # [K, C, r, r]
        return self.projection(self.dropout(pooled.amax(dim=(2, 3))))  # [K, classes]


@register_checkpoint_class("ava_num_classes")  # create_model(pretrained=detector checkpoint) rebuilds one
class HieraAVA(Hiera):
    """Hiera backbone + RoI head. Constructor: `Hiera`'s arguments (its classifier is dropped) plus
    the head's. `forward(x, boxes, batch_index)` -> logits [K, ava_num_classes]."""

    # Tensors a backbone checkpoint does not have; loading one leaves them at their initial values.
    fresh_prefixes = ("roi_head.",)

    def __init__(self, ava_num_classes: int = 80, roi_resolution: int = 7, roi_dropout: float = 0.5, **kwargs):
        kwargs["num_classes"] = 0
        super().__init__(**kwargs)
        self.config.update(ava_num_classes=ava_num_classes, roi_resolution=roi_resolution, roi_dropout=roi_dropout)
        self.roi_head = RoIHead(self.num_features, ava_num_classes, roi_resolution, roi_dropout)

    @property
    def num_outputs(self) -> int:
        return self.config["ava_num_classes"]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last stage, normalised, averaged over time: [B, C, h, w]."""
        last = self.forward_intermediates(x)[-1]  # [B, T', h, w, C], spatial order
        last = self.norm(last)  # the backbone's final norm, per token
        return last.mean(dim=1).permute(0, 3, 1, 2) if last.dim() == 5 else last.permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, boxes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        if len(boxes) != len(batch_index):
            raise ValueError(f"boxes {list(boxes.shape)} and batch_index {list(batch_index.shape)} differ in length")
        return self.roi_head(self.feature_map(x), boxes, batch_index)


def create_ava_model(name: str, pretrained=None, **overrides):
    """An AVA detector (`HieraAVA`: the backbone of classifier `name` plus the RoI head), its backbone
    optionally initialised from any checkpoint `create_model` takes (a Kinetics-finetuned classifier:
    its head is dropped; the RoI head starts fresh, logged)."""
    config = variant_config(name)
    if is_mae_config(config):
        raise ValueError(f"{name} is an MAE; an AVA detector is built on a classifier's backbone, "
                         f"e.g. {name[len('mae_'):]}")
    model = HieraAVA(**{**config, **overrides})
    model.name = name
    if pretrained is not None:
        ckpt, meta = read_pretrained(name, pretrained)
        if is_mae_config(ckpt.model_config):  # adapt_state_dict needs the encoder's geometry only
            ckpt.model_config = encoder_config(ckpt.model_config)
        model.pretrained_cfg = model_pretrained_cfg(model, ckpt, meta)
        load_pretrained(model, ckpt)
    else:
        model.pretrained_cfg = {}
    return model


def ava_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Multi-label loss per box: "bce" (sigmoid, the usual AVA loss) or "ce" (softmax cross entropy
    against the labels normalised to sum 1, as the paper mentions). Boxes without a label (background
    proposals) count in "bce" (all negatives) and are skipped in "ce"."""
    if kind == "bce":
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
    if kind == "ce":
        has = labels.sum(1) > 0
        if not bool(has.any()):
            return logits.sum() * 0.0
        target = labels[has] / labels[has].sum(1, keepdim=True)
        return -(target * logits[has].float().log_softmax(-1)).sum(-1).mean()
    raise ValueError(f"ava loss must be 'bce' or 'ce', got {kind!r}")


def ava_scores(logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Per-class scores of detections: sigmoid for "bce", softmax for "ce"."""
    return logits.float().sigmoid() if kind == "bce" else logits.float().softmax(-1)


__all__ = ["HieraAVA", "RoIHead", "ava_loss", "ava_scores", "roi_align"]
