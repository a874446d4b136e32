#!/usr/bin/env python
"""The main job of `./run.sh`, with what exists so far: it builds the tiny video Hiera, runs it on a
synthetic clip (a square moving to the right), shows each stage's feature map, saves the model in this
project's checkpoint format and rebuilds it from that file alone.

The model is untrained: this shows the backbone and checkpoint round trip, not recognition. Training
on generated videos replaces this once the data and finetuning issues land.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hiera_video  # noqa: E402
from hiera_video.models import count_flops, count_params  # noqa: E402


def moving_square(frames: int, size: int) -> torch.Tensor:
    """[3, T, H, W] clip, normalised like Kinetics input: a bright square sliding left to right."""
    clip = torch.zeros(3, frames, size, size)
    side = size // 4
    for t in range(frames):
        x0 = int((size - side) * t / max(frames - 1, 1))
        clip[:, t, size // 2 - side // 2: size // 2 + side // 2, x0:x0 + side] = 1.0
    return (clip - 0.45) / 0.225


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="hiera_tiny_16x128")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)

    model = hiera_video.create_model(args.model, num_classes=2).eval()
    T, H, W = model.input_size
    print(f"model {args.model}: {count_params(model) / 1e6:.2f} M parameters, "
          f"{count_flops(model) / 1e9:.2f} GFLOPs per {T}x{H}x{W} clip (untrained)")
    clip = moving_square(T, H)[None]  # [1, 3, T, H, W]
    with torch.inference_mode():
        start = time.perf_counter()
        logits = model(clip)
        elapsed = time.perf_counter() - start
        maps = model.forward_intermediates(clip)
    print(f"forward pass on CPU: {elapsed * 1e3:.0f} ms; logits {logits.squeeze(0).tolist()}")
    for i, m in enumerate(maps, 1):
        print(f"  stage {i} map [B, T, H, W, C] = {list(m.shape)}")

    path = args.out / "model_untrained.pt"
    hiera_video.save_model(model, path)
    again = hiera_video.create_model(pretrained=str(path)).eval()
    with torch.inference_mode():
        same = torch.equal(again(clip), logits)
    print(f"saved {path} and rebuilt the model from it alone: logits identical = {same}")
    print("Not yet: training and evaluation on synthetic videos (data pipeline and finetuning issues).")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
