"""Is an MAE encoder healthy? Two measurements that told why MAE pretraining hurt here (docs/mae_study.md),
cheap enough to run on any checkpoint before days of finetuning:

* per stage, on the dense encoder a classifier gets: the effective rank of the token features (exp of
  the entropy of the normalised covariance spectrum; a stage whose rank fell far below a random
  initialisation's has collapsed onto a few directions: too high a pretraining lr did that here),
  and the share of their energy in one vector common to all tokens;
* the fusion ablation: the MAE loss on masked patches with each multi-scale fusion branch removed. If
  removing the last stage barely changes the loss, the decoder reads the early stages only and the
  deep stages, the ones a classifier uses, learned little (normalised-pixel targets on the synthetic
  videos did that here).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch

from ...config import Config
from ...data.datasets import MultiViewDataset, collate_views
from ...data.lists import read_list
from ...data.transforms import normalize
from ...engine.embed import load_backbone
from ...fileio import atomic_write
from ...models import Hiera, create_model, read_checkpoint
from ...models.official import is_mae_config

logger = logging.getLogger("hiera_video")

# Below these, `diagnose` says so: a stage rank under this share of the random encoder's; a loss that
# grows by less than this share when the last stage is removed from the fusion.
COLLAPSED_RANK_SHARE = 0.25
UNUSED_LAST_STAGE = 0.10


@torch.no_grad()
def stage_statistics(model, clips: torch.Tensor, batch_size: int = 16) -> list[dict]:
    """Per stage of a dense (unmasked) encoder on normalised clips [N, C, T, H, W]: channels,
    effective rank, common share (energy of the mean token), token RMS."""
    sums = None
    for i in range(0, len(clips), batch_size):
        maps = model.forward_intermediates(clips[i:i + batch_size])  # per stage [B, *grid, C]
        if sums is None:
            sums = [[0, 0.0, 0.0, 0.0] for _ in maps]  # tokens, sum, sum of outer products, sum of squares
        for acc, m in zip(sums, maps):
            tok = m.reshape(-1, m.shape[-1]).double()  # [tokens, C]
            acc[0] += len(tok)
            acc[1] = acc[1] + tok.sum(0)
            acc[2] = acc[2] + tok.T @ tok
            acc[3] += float(tok.pow(2).sum())
    out = []
    for stage, (n, s, ss, sq) in enumerate(sums, 1):
        mean = s / n
        cov = ss / n - torch.outer(mean, mean)
        eig = torch.linalg.eigvalsh(cov).clamp(min=0)
        p = eig / eig.sum().clamp(min=1e-30)
        rank = math.exp(float(-(p * p.clamp(min=1e-30).log()).sum()))
        out.append({"stage": stage, "channels": len(mean), "effective_rank": round(rank, 2),
                    "common_share": round(float(mean.pow(2).sum()) / (sq / n), 4),
                    "token_rms": round(math.sqrt(sq / n / len(mean)), 4)})
    return out


@torch.no_grad()
def fusion_ablation(mae, clips: torch.Tensor, mask_ratio: float | None = None, seed: int = 0,
                    batch_size: int = 16) -> dict:
    """MAE loss on masked patches with all fusion branches and with each one removed (seeded masks)."""
    ratio = mae.mask_ratio if mask_ratio is None else mask_ratio
    names = [f"stage {i + 1}" for i in range(mae.q_pool)] + [f"stage {len(mae.stage_ends)}"]
    totals = {"all": 0.0, **{n: 0.0 for n in names}}
    g = torch.Generator().manual_seed(seed)
    for i in range(0, len(clips), batch_size):
        x = clips[i:i + batch_size]
        mask = mae.get_random_mask(len(x), ratio, generator=g)
        branches = mae.fusion_branches(x, mask)
        masked = ~mae.token_mask(mask)
        label = mae.pixel_targets(x)[masked].float()

        def loss(fused):
            return float((mae.forward_decoder(mae.encoder_norm(fused), mask)[masked].float() - label).pow(2).mean())
        totals["all"] += loss(sum(branches)) * len(x)
        for k, name in enumerate(names):
            totals[name] += loss(sum(b for j, b in enumerate(branches) if j != k)) * len(x)
    losses = {k: round(v / len(clips), 5) for k, v in totals.items()}
    return {"mask_ratio": ratio, "loss": losses["all"],
            "loss_without": {n: losses[n] for n in names},
            "increase_without": {n: round(losses[n] / losses["all"] - 1, 4) for n in names}}


def load_clips(cfg: Config, list_path: str, num_videos: int, backend: str = "auto") -> torch.Tensor:
    """The centre view of the first `num_videos` readable videos of a list, normalised: [N, C, T, H, W]."""
    d = cfg.data
    entries = read_list(list_path, d.root, labelled=False)[:num_videos]
    ds = MultiViewDataset(entries, num_frames=d.num_frames, sampling_rate=d.sampling_rate, target_fps=d.target_fps,
                          sampling_mode=d.sampling_mode, crop_size=d.crop_size, num_temporal_clips=1,
                          num_spatial_crops=1, test_short_side=d.test_short_side, backend=backend)
    batch = collate_views([ds[i] for i in range(len(ds))])
    if len(batch["video"]) == 0:
        raise ValueError(f"none of the first {len(entries)} videos of {list_path} could be read")
    return normalize(batch["video"], d.mean, d.std)


def diagnose(cfg: Config, ckpt: str, list_path: str, out: str | Path | None = None, num_videos: int = 64,
             seed: int = 0) -> dict:
    """Stage statistics of `ckpt`'s encoder beside a random initialisation's, and, for an MAE checkpoint,
    the fusion ablation; warnings where a threshold is crossed. Writes OUT/diagnose.json when `out`."""

    checkpoint = read_checkpoint(ckpt)
    encoder, _ = load_backbone(ckpt, cfg)
    random = _random_like(encoder, seed)
    clips = load_clips(cfg, list_path, num_videos, cfg.data.backend)
    stages = stage_statistics(encoder, clips)
    for row, ref in zip(stages, stage_statistics(random, clips)):
        row["random_effective_rank"] = ref["effective_rank"]
        row["random_common_share"] = ref["common_share"]
    result = {"checkpoint": str(ckpt), "list": str(list_path), "videos": len(clips), "stages": stages}
    warnings = [f"stage {r['stage']} has collapsed: effective rank {r['effective_rank']} against "
                f"{r['random_effective_rank']} at random initialisation"
                for r in stages if r["effective_rank"] < COLLAPSED_RANK_SHARE * r["random_effective_rank"]]
    if is_mae_config(checkpoint.model_config):
        mae = create_model(pretrained=checkpoint, input_size=encoder.input_size).eval()
        result["fusion"] = fusion_ablation(mae, clips, seed=seed)
        last = list(result["fusion"]["increase_without"])[-1]
        if result["fusion"]["increase_without"][last] < UNUSED_LAST_STAGE:
            warnings.append(f"the decoder barely reads the deep stages: without {last} the MAE loss grows by "
                            f"{100 * result['fusion']['increase_without'][last]:.1f}% only")
    result["warnings"] = warnings
    if out is not None:
        atomic_write(Path(out) / "diagnose.json", json.dumps(result, indent=2) + "\n")
    return result


def _random_like(encoder, seed: int):
    """A freshly initialised copy of `encoder`'s architecture (seeded), in eval mode."""
    torch.manual_seed(seed)
    return Hiera(**{**encoder.config, "num_classes": 0}).eval()
