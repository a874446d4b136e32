#!/usr/bin/env python
"""The main job of `./run.sh`, on a fresh machine with no data and no GPU:

1. generates the synthetic action dataset (500 real H.264 videos of 8 actions that only temporal order
   tells apart) under runs/demo/data, unless it is already there;
2. checks every video;
3. finetunes the tiny video Hiera on it with the real training loop and the real data pipeline
   (configs/synthetic_hiera_tiny.yaml), under runs/demo/finetune; a second run resumes or reports;
4. prints a summary: accuracy on the validation videos, time, and where everything is.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiera_video.config import load_config  # noqa: E402
from hiera_video.data.check import check_entries  # noqa: E402
from hiera_video.data.lists import read_list  # noqa: E402
from hiera_video.data.synthetic import make_dataset  # noqa: E402
from hiera_video.engine.train import latest_checkpoint, train  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", type=Path, default=ROOT / "configs" / "synthetic_hiera_tiny.yaml")
    p.add_argument("--data", type=Path, default=Path("runs/demo/data"))
    p.add_argument("--train", type=int, default=400, help="synthetic training videos")
    p.add_argument("--val", type=int, default=100, help="synthetic validation videos")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. train.epochs=5")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    start = time.perf_counter()

    summary = make_dataset(args.data, args.train, args.val, seed=0, workers=args.workers)
    print(f"[1/3] synthetic dataset in {args.data}: {summary['written']} videos written, {summary['skipped']} "
          f"already there ({summary['seconds']:.0f} s)")
    entries = read_list(args.data / "train.csv") + read_list(args.data / "val.csv")
    bad = [(e.path, r) for e, r in check_entries(entries, workers=args.workers) if r]
    print(f"      checked {len(entries)} videos: {len(bad)} bad" + "".join(f"\n        {p}: {r}" for p, r in bad))

    overrides = [f"data.train_list={args.data / 'train.csv'}", f"data.val_list={args.data / 'val.csv'}",
                 f"data.classes={args.data / 'classes.txt'}", *args.overrides]
    cfg = load_config(args.cfg, overrides)
    cfg.train.resume = latest_checkpoint(cfg.output_dir) is not None  # a second ./run.sh continues or reports
    print(f"[2/3] finetuning {cfg.model.name} for {cfg.train.epochs} epochs on CPU -> {cfg.output_dir}"
          + (" (resuming)" if cfg.train.resume else ""))
    metrics = train(cfg)

    rows = [json.loads(line) for line in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r.get("val_top1", -1))
    minutes = (time.perf_counter() - start) / 60
    print(f"[3/3] validation top-1 {metrics['val_top1']:.1%} (top-5 {metrics['val_top5']:.1%}) on "
          f"{metrics['val_videos']} videos after {metrics['epoch']} epochs; best {best['val_top1']:.1%} at epoch "
          f"{best['epoch']}; {minutes:.1f} min in all")
    print(f"      outputs: {cfg.output_dir}/model_best.pt, model_last.pt, metrics.jsonl, config.yaml, checkpoints/")
    print("      (one centre view per video; multi-view evaluation comes with tools/evaluate.py)")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
