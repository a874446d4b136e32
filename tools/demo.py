#!/usr/bin/env python
"""The main job of `./run.sh`, with what exists so far:

1. generates the synthetic action dataset (real H.264 videos; 8 actions in time-reversed pairs) under
   runs/demo/data, unless it is already there;
2. checks every video and decodes training clips through the real pipeline (16x4 sampling, random
   resized crop, flip, RandAugment, then normalisation and mixup on the device), timing the loader;
3. runs the tiny video Hiera on a batch, and saves and rebuilds it from its checkpoint alone.

The model is untrained: training on this data arrives with the finetuning issue, and this demo will
then train and evaluate instead.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hiera_video  # noqa: E402
from hiera_video.data.check import check_entries  # noqa: E402
from hiera_video.data.datasets import BatchAugment, ClipDataset, collate_clips  # noqa: E402
from hiera_video.data.lists import read_classes, read_list  # noqa: E402
from hiera_video.data.mix import Mixup  # noqa: E402
from hiera_video.data.synthetic import make_dataset  # noqa: E402
from hiera_video.data.transforms import RandAugment  # noqa: E402
from hiera_video.models import count_flops, count_params  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="hiera_tiny_16x128")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--train", type=int, default=400, help="synthetic training videos")
    p.add_argument("--val", type=int, default=100, help="synthetic validation videos")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    data = args.out / "data"

    start = time.perf_counter()
    summary = make_dataset(data, args.train, args.val, seed=0, workers=args.workers)
    print(f"[1/3] synthetic dataset in {data}: {summary} ({time.perf_counter() - start:.1f} s)")

    classes = read_classes(data / "classes.txt")
    train = read_list(data / "train.csv", num_classes=len(classes))
    bad = [(e.path, r) for e, r in check_entries(train + read_list(data / "val.csv"), workers=args.workers) if r]
    print(f"      checked {len(train)} + {args.val} videos: {len(bad)} bad")

    model = hiera_video.create_model(args.model, num_classes=len(classes))
    T, H, _ = model.input_size
    # No flip: mirroring turns move_left into move_right and clockwise into counter-clockwise.
    ds = ClipDataset(train, num_frames=T, sampling_rate=4, crop_size=H, hflip=False,
                     randaug=RandAugment(7, 4, 0.5))
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=args.workers, collate_fn=collate_clips)
    start, clips = time.perf_counter(), 0
    for i, batch in enumerate(loader):
        clips += len(batch["video"])
        if i == 5:
            break
    rate = clips / (time.perf_counter() - start)
    print(f"[2/3] loader: {clips} clips of uint8 {list(batch['video'].shape[1:])} at {rate:.1f} clips/s "
          f"({args.workers} workers, worker start-up included)")

    x, target = BatchAugment(erase_prob=0.25, mixup=Mixup(len(classes)))(batch["video"], batch["label"])
    with torch.no_grad():
        logits = model.eval()(x)
    loss = -(target * logits.log_softmax(-1)).sum(-1).mean()
    print(f"[3/3] {args.model} ({count_params(model) / 1e6:.2f} M params, {count_flops(model) / 1e9:.2f} "
          f"GFLOPs/clip, untrained): logits {list(logits.shape)}, mixup loss {loss:.3f} "
          f"(ln {len(classes)} = {torch.tensor(float(len(classes))).log():.3f} for a uniform guess)")
    path = args.out / "model_untrained.pt"
    hiera_video.save_model(model, path)
    again = hiera_video.create_model(pretrained=str(path)).eval()
    with torch.no_grad():
        same = torch.equal(again(x), logits)
    print(f"      saved {path}; rebuilt from the file alone: identical logits = {same}")
    print("Not yet: training and multi-view evaluation (the finetuning and evaluation issues).")
    return 0 if same and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
