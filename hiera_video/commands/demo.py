"""The main job of `./run.sh`, on a fresh machine with no data and no GPU:

1. generates the synthetic action dataset (500 real H.264 videos of 8 actions that only temporal order
   tells apart) under runs/demo/data, unless it is already there;
2. checks every video;
3. finetunes the tiny video Hiera on it with the real training loop and the real data pipeline
   (the shipped synthetic_hiera_tiny config), under runs/demo/finetune, drawing the learning curves in
   runs/demo/finetune/curves.png after each epoch; a second run resumes or reports;
4. evaluates the best checkpoint with multi-view testing (runs/demo/eval/metrics.json);
5. embeds the validation videos with it and measures leave-one-out retrieval
   (runs/demo/embeddings, runs/demo/eval/retrieval.json);
6. prints a summary: accuracy, retrieval, time, and where everything is.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from ..cli import command
from ..config import load_config
from ..data.check import check_entries
from ..data.lists import read_list
from ..engine.embed import extract_embeddings
from ..engine.evaluate import evaluate
from ..engine.train import latest_checkpoint, train
from ..retrieval import leave_one_out, load_index
from ..synthetic.actions import make_action_dataset


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cfg", type=Path, default="synthetic_hiera_tiny",
                   help="config file or shipped config name (default synthetic_hiera_tiny)")
    p.add_argument("--data", type=Path, default=Path("runs/demo/data"))
    p.add_argument("--train", type=int, default=400, help="synthetic training videos")
    p.add_argument("--val", type=int, default=100, help="synthetic validation videos")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. train.epochs=5")


@command(__doc__, arguments, logs=True)
def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()

    summary = make_action_dataset(args.data, args.train, args.val, seed=0, workers=args.workers)
    print(f"[1/5] synthetic dataset in {args.data}: {summary['written']} videos written, {summary['skipped']} "
          f"already there ({summary['seconds']:.0f} s)")
    entries = read_list(args.data / "train.csv") + read_list(args.data / "val.csv")
    bad = [(e.path, r) for e, r in check_entries(entries, workers=args.workers) if r]
    print(f"      checked {len(entries)} videos: {len(bad)} bad" + "".join(f"\n        {p}: {r}" for p, r in bad))

    overrides = [f"data.train_list={args.data / 'train.csv'}", f"data.val_list={args.data / 'val.csv'}",
                 f"data.classes={args.data / 'classes.txt'}", *args.overrides]
    cfg = load_config(args.cfg, overrides)
    # A second ./run.sh continues the run or reports it; resume=true also starts a run that has nothing yet.
    cfg.train.resume = True
    print(f"[2/5] finetuning {cfg.model.name} for {cfg.train.epochs} epochs on CPU -> {cfg.output_dir}"
          + (" (resuming)" if latest_checkpoint(cfg.output_dir) else ""))
    metrics = train(cfg)

    rows = [json.loads(line) for line in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r.get("val_top1", -1))
    print(f"      validation (one centre view) top-1 {metrics['val_top1']:.1%} after {metrics['epoch']} epochs; "
          f"best {best['val_top1']:.1%} at epoch {best['epoch']}")

    ckpt = str(Path(cfg.output_dir) / "model_best.pt")
    demo = Path(cfg.output_dir).parent
    views = f"{cfg.eval.num_temporal_clips} x {cfg.eval.num_spatial_crops}"
    print(f"[3/5] multi-view evaluation of {ckpt} ({views} views) -> {demo / 'eval'}")
    ev = evaluate(cfg, ckpt, demo / "eval")

    print(f"[4/5] embedding the validation videos -> {demo / 'embeddings'}")
    extract_embeddings(cfg, ckpt, cfg.data.val_list, demo / "embeddings", cfg.eval.num_temporal_clips,
                       cfg.eval.num_spatial_crops, num_workers=args.workers)
    embeddings, _, labels, _ = load_index(demo / "embeddings")
    retrieval = leave_one_out(embeddings, labels)
    (demo / "eval" / "retrieval.json").write_text(json.dumps(retrieval, indent=2))

    minutes = (time.perf_counter() - start) / 60
    print(f"[5/5] {ev['num_videos']} validation videos, {views} views: top-1 {ev['top1']:.1%}, top-5 {ev['top5']:.1%}, "
          f"mean class accuracy {ev['mean_class_acc']:.1%}; retrieval with its own embeddings: recall@1 "
          f"{retrieval['recall@1']:.1%}, recall@5 {retrieval['recall@5']:.1%}, mAP {retrieval['mAP']:.3f}; "
          f"{minutes:.1f} min in all")
    curves = ", curves.png" if (Path(cfg.output_dir) / "curves.png").is_file() else ""
    print(f"      outputs: {cfg.output_dir}/ (model_best.pt, metrics.jsonl{curves}, checkpoints/), {demo / 'eval'}/ "
          f"(metrics.json, predictions.csv, per_class.csv, confusion.png, retrieval.json), {demo / 'embeddings'}/")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
