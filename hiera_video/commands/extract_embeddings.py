"""One L2-normalised embedding per video of a list (pooled pre-logits features, averaged over views).

    accelerate launch -m hiera_video embed --ckpt runs/k400_l/model_best.pt --list val.csv --out emb/val
    hiera-video embed --cfg synthetic_hiera_tiny --ckpt model_best.pt \\
        --list runs/demo/data/val.csv --out runs/demo/embeddings --views 2,3

Writes OUT/embeddings.npy (float32 N x D, row i = line i of the list; NaN rows for unreadable videos,
which meta.json lists), OUT/index.csv (path, label) and OUT/meta.json. Interrupted? Run it again: it
resumes from OUT/parts. Any checkpoint works, MAE encoders included.
"""

import argparse
import sys

from ..cli import add_config_arguments, add_loader_arguments, command, load_cli_config, output_folder
from ..engine.embed import extract_embeddings
from ..engine.evaluate import parse_views


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True)
    p.add_argument("--list", required=True, help="`path [label]` lines")
    p.add_argument("--out", type=output_folder, required=True)
    add_config_arguments(p)  # whose data settings (frames, sampling, crop, root) to use
    p.add_argument("--model", help="architecture for checkpoints that do not record it")
    p.add_argument("--root", help="folder relative paths start from (default: the list's folder)")
    p.add_argument("--views", type=parse_views, default=(1, 1), help="temporal,spatial views (default 1,1)")
    p.add_argument("--pool", default="mean", choices=["mean", "max"], help="how views combine (default mean)")
    p.add_argument("--chunk", type=int, default=512, help="videos per resumable chunk")
    add_loader_arguments(p)


@command(__doc__, arguments, logs=True)
def main(args: argparse.Namespace) -> int:
    cfg = load_cli_config(args.cfg, args.overrides)
    meta = extract_embeddings(cfg, args.ckpt, args.list, args.out, *args.views, pool=args.pool,
                              model_name=args.model, chunk=args.chunk, batch_size=args.batch_size,
                              num_workers=args.workers, root=args.root)
    print(f"{meta['num_videos']} x {meta['dimension']} embeddings in {args.out} ({len(meta['unreadable'])} unreadable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
