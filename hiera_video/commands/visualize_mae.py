"""Picture of an MAE at work on one video: frames, masked input, reconstruction, side by side.

    hiera-video visualize-mae --ckpt runs/mae_demo/model_last.pt --video clip.mp4 --out mae.png
    hiera-video visualize-mae --ckpt mae_hiera_large_16x224.pth --model mae_hiera_large_16x224 \\
        --video clip.mp4 --out mae.png --mask-ratio 0.9

Rows: the first frame of each 2-frame token, the encoder's input (deleted mask units grey), and the
reconstruction (visible patches kept, the masked ones predicted, each with its true patch's mean and
std when the model predicts normalised pixels). The clip is the centre view, sampled as the checkpoint
records (this project's) or as the model's defaults (official: 16x4 at 224).
"""

import argparse
import sys
from pathlib import Path

import torch

from ..cli import command
from ..data.lists import Entry
from ..data.transforms import normalize
from ..engine.evaluate import clip_settings, multi_view_dataset
from ..models import create_model, read_checkpoint
from ..models.mae import MaskedAutoencoderHiera
from ..viz import mae_figure, write_png


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="an MAE checkpoint (this project's, official .pth, HF folder)")
    p.add_argument("--video", required=True)
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--model", help="MAE architecture for checkpoints that do not record it "
                                   "(e.g. mae_hiera_large_16x224)")
    p.add_argument("--mask-ratio", type=float, help="default: the model's (video 0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random mask")
    p.add_argument("--frames", type=int, default=8, help="at most this many frames (columns)")
    p.add_argument("--scale", type=int, default=0, help="pixel zoom (default: 4 below 128 px, else 1)")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    ckpt = read_checkpoint(args.ckpt)
    model = create_model(None if ckpt.model_config else args.model, pretrained=ckpt)
    if not isinstance(model, MaskedAutoencoderHiera):
        raise ValueError(f"{args.ckpt} holds a classifier, not an MAE (it has no decoder to reconstruct "
                         f"with); give an MAE checkpoint" + ("" if ckpt.model_config else " and --model mae_..."))
    model.eval()
    s = clip_settings(model, ckpt, None)
    item = multi_view_dataset([Entry(args.video, -1, 1)], s, 1, 1)[0]
    if item["error"] is not None:
        print(f"error: {args.video}: cannot read: {item['error']}", file=sys.stderr)
        return 1
    clip = normalize(item["video"], s.mean, s.std)[0]  # [C, T, H, W]
    ratio = model.mask_ratio if args.mask_ratio is None else args.mask_ratio
    mask = model.get_random_mask(1, ratio, generator=torch.Generator().manual_seed(args.seed))[0]
    scale = args.scale or (4 if s.crop_size < 128 else 1)
    with torch.no_grad():
        image = mae_figure(model, clip, mask, s.mean, s.std, args.frames, scale)
        loss = model(clip.unsqueeze(0), mask=mask.view(1, -1)).loss.item()
    write_png(args.out, image)
    print(f"{args.out}: {image.shape[1]}x{image.shape[0]} px; mask ratio {ratio} "
          f"({int(mask.sum())} of {mask.numel()} units kept), loss {loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
