"""Mixup / CutMix with label smoothing (timm's `Mixup` in batch mode) and the soft-target loss.

Runs on the training device on a normalised float batch `[B, C, T, H, W]` (any `[B, ..., H, W]`
works) and long targets `[B]`. All draws come from the optional `torch.Generator` (the global torch
RNG when None), never from numpy or Python's `random`, so seeding torch makes runs reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def one_hot(target: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Label-smoothed one-hot rows `[B] -> [B, num_classes]` (float32) as timm: off value
    smoothing / num_classes, on value 1 - smoothing + smoothing / num_classes, so each row sums to 1."""
    if not (isinstance(num_classes, int) and num_classes > 0):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if target.dim() != 1 or target.dtype != torch.long:
        raise ValueError(f"target must be a long tensor [B], got {target.dtype} shape {tuple(target.shape)}")
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    # F.one_hot checks that every label is in range (a sync on GPU, but a wrong label must fail loudly)
    return F.one_hot(target, num_classes).float().mul_(on - off).add_(off)


def _rand(n: int, generator: torch.Generator | None) -> list[float]:
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, generator=generator, dtype=torch.float64, device=device).tolist()


def _log_gamma_sample(alpha: float, generator: torch.Generator | None) -> float:
    """log of one Gamma(alpha, 1) draw by Marsaglia and Tsang's method, using only `generator`.

    torch's Gamma/Beta samplers take no generator, so this few-line rejection sampler is how a seeded
    generator controls lam. Returns the log so that alpha < 1 (Gamma(alpha) = Gamma(alpha + 1) *
    U^(1/alpha)) cannot underflow to 0.
    """
    boost = 0.0
    if alpha < 1.0:
        boost = math.log(max(_rand(1, generator)[0], 1e-300)) / alpha
        alpha += 1.0
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    device = generator.device if generator is not None else torch.device("cpu")
    while True:  # accepts with probability > 0.95 per round
        z = torch.randn((), generator=generator, dtype=torch.float64, device=device).item()
        v = (1.0 + c * z) ** 3
        if v <= 0.0:
            continue
        u = max(_rand(1, generator)[0], 1e-300)
        if math.log(u) < 0.5 * z * z + d - d * v + d * math.log(v):
            return math.log(d * v) + boost


def sample_beta(alpha: float, beta: float, generator: torch.Generator | None = None) -> float:
    """One Beta(alpha, beta) draw as X / (X + Y) with X ~ Gamma(alpha), Y ~ Gamma(beta)."""
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"Beta parameters must be positive, got alpha={alpha!r}, beta={beta!r}")
    log_x = _log_gamma_sample(alpha, generator)
    log_y = _log_gamma_sample(beta, generator)
    # X / (X + Y) = sigmoid(log X - log Y), stable for very small draws
    return 1.0 / (1.0 + math.exp(min(log_y - log_x, 700.0)))


class Mixup:
    """timm's `Mixup(mode="batch")`: one lam and one mode for the whole batch, each sample mixed with
    the batch flipped (`x.flip(0)`), targets mixed the same way and label-smoothed.

    With probability `prob` the batch is mixed: CutMix with probability `switch_prob` when both
    alphas are > 0 (otherwise whichever alpha is > 0), lam ~ Beta(alpha, alpha). CutMix pastes one box
    (the same in every sample and frame) of side sqrt(1 - lam) of H and W around a uniform centre,
    clipped to the image, and corrects lam to 1 - box area / (H * W). Otherwise, or when `enabled` is
    False (timm's `mixup_enabled`, e.g. turned off for the last epochs), or both alphas are 0, targets
    are only smoothed.

    Unlike timm, any batch size works and the input is never modified in place: with B odd the middle
    sample is mixed with itself (a no-op for it, its target stays its own); B == 1 returns the input
    itself with smoothed one-hot targets and draws nothing.
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, prob: float = 1.0,
                 switch_prob: float = 0.5, label_smoothing: float = 0.1, enabled: bool = True):
        if not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"mixup_alpha and cutmix_alpha must be >= 0, got {mixup_alpha!r}, {cutmix_alpha!r}")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob!r}")
        if not 0.0 <= switch_prob <= 1.0:
            raise ValueError(f"switch_prob must be in [0, 1], got {switch_prob!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.label_smoothing = label_smoothing
        self.enabled = enabled

    def __repr__(self) -> str:
        return (f"Mixup(num_classes={self.num_classes}, mixup_alpha={self.mixup_alpha}, "
                f"cutmix_alpha={self.cutmix_alpha}, prob={self.prob}, switch_prob={self.switch_prob}, "
                f"label_smoothing={self.label_smoothing}, enabled={self.enabled})")

    def sample_params(self, height: int, width: int, generator: torch.Generator | None = None
                      ) -> tuple[float, tuple[int, int, int, int] | None]:
        """Draw `(lam, box)` for one batch; box is `(top, bottom, left, right)` for CutMix, None for
        mixup. lam == 1.0 means no mixing."""
        active = self.enabled and (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.prob > 0
        if not active:
            return 1.0, None
        u_apply, u_switch, u_cy, u_cx = _rand(4, generator)  # a fixed number of uniform draws per batch
        if u_apply >= self.prob:
            return 1.0, None
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = u_switch < self.switch_prob
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = sample_beta(alpha, alpha, generator)
        if not use_cutmix:
            return lam, None
        # timm's rand_bbox: box sides are sqrt(1 - lam) of the image sides around a uniform centre
        cut = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * cut), int(width * cut)
        cy, cx = min(int(u_cy * height), height - 1), min(int(u_cx * width), width - 1)
        top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        return lam, (top, bottom, left, right)

    def __call__(self, x: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """`x [B, C, T, H, W]` float, `target [B]` long -> (mixed x, soft targets `[B, num_classes]`)."""
        if x.dim() < 3 or not x.is_floating_point():
            raise ValueError(f"Mixup expects a float batch [B, C, T, H, W], got {x.dtype} shape {tuple(x.shape)}")
        if target.dim() != 1 or target.shape[0] != x.shape[0]:
            raise ValueError(f"target must be [B] with B = {x.shape[0]}, got shape {tuple(target.shape)}")
        y = one_hot(target, self.num_classes, self.label_smoothing)  # [B, num_classes]
        if x.shape[0] == 1:
            return x, y
        lam, box = self.sample_params(x.shape[-2], x.shape[-1], generator)
        if lam == 1.0:
            return x, y
        if box is None:
            x = torch.lerp(x.flip(0), x, lam)  # lam * x + (1 - lam) * x.flip(0)
        else:
            top, bottom, left, right = box
            out = x.clone()
            out[..., top:bottom, left:right] = x[..., top:bottom, left:right].flip(0)
            x = out
        return x, torch.lerp(y.flip(0), y, lam)


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum(target * log_softmax(logits)); `target` rows are distributions."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and soft targets {tuple(target.shape)} must match")
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()


class SoftTargetCrossEntropy(nn.Module):
    """`soft_target_cross_entropy` as a loss module (timm's name)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_target_cross_entropy(logits, target)
