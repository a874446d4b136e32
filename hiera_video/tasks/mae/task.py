"""Sparse MAE pretraining (`task: mae`): the model's own loss under random masks (from the global RNG,
which checkpoints restore); validation loss under masks seeded by video id (the same every epoch)."""

from __future__ import annotations

import torch

from ...engine.evaluate import predict_views
from ...models import create_model
from .. import Task
from ..video import check_video_paths, video_datasets


class MaeTask(Task):
    best_metric, higher_is_better = "val_loss", False
    command = "pretrain"

    def check_paths(self):
        check_video_paths(self.cfg)

    def build_model(self):
        c, d = self.cfg.model, self.cfg.data
        if not c.name.startswith("mae_"):
            raise ValueError(f"model.name {c.name!r} does not fit task 'mae': it needs an mae_* model, "
                             f"e.g. mae_{c.name}")
        extra = {key: getattr(c, key) for key in ("mask_ratio", "norm_pix_loss") if getattr(c, key) is not None}
        model = create_model(c.name, pretrained=c.pretrained, drop_path_rate=c.drop_path,
                             input_size=(d.num_frames, d.crop_size, d.crop_size), **extra)
        model.set_grad_checkpointing(c.grad_checkpointing)
        return model

    def datasets(self):
        return video_datasets(self.cfg, labelled=False)  # MAE needs no labels

    def loss(self, model, x, target, batch):
        return model(x).loss

    def validate(self, accelerator, model, loader):
        _, losses, _, unreadable = predict_views(accelerator, model, loader, 1, self.cfg.data.mean,
                                                 self.cfg.data.std, progress="validating", forward=mae_clip_losses)
        return {"val_loss": round(losses.mean().item(), 6) if len(losses) else float("nan"),
                "val_videos": len(losses), "val_unreadable": len(unreadable)}


@torch.no_grad()
def mae_clip_losses(model, x: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """Validation for MAE: each clip's loss [N, 1] under a mask seeded by its video index, so the
    figure is the same every epoch, for any batch size and number of processes."""
    base = getattr(model, "module", model)  # DDP-wrapped or not; the forward itself goes through `model`
    masks = torch.cat([base.get_random_mask(1, base.mask_ratio, generator=torch.Generator().manual_seed(int(v)))
                       for v in views[:, 0].tolist()]).to(x.device)
    out = model(x, mask=masks)
    # Every clip has the same number of masked patches: [masked patches of the batch, P] -> [N, ...]
    return (out.pred.float() - out.label.float()).pow(2).view(len(x), -1).mean(1, keepdim=True)
