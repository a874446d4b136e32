"""Frozen-feature probe of any checkpoint (MAE encoders included): k-NN, 1-NN and linear accuracy of its
embeddings, the encoder itself untouched.

    hiera-video probe --cfg synthetic_mae_recipe_finetune --ckpt runs/mae/model_last.pt \\
        --train data/labelled.csv --val data/val.csv --out runs/mae/probe
    hiera-video probe --cfg synthetic_mae_recipe_finetune --ckpt random --model hiera_tiny_16x64 \\
        --train data/labelled.csv --val data/val.csv --out runs/random_probe      # the yardstick
    hiera-video probe --ckpt runs/k400_l/model_best.pt --val val.csv --out probe   # leave-one-out k-NN

Embeds both lists (OUT/embeddings/{train,val}, resumable like `hiera-video embed`), fits the probes on
the training list's embeddings and scores the validation list's; without --train, k-NN runs
leave-one-out on the validation list. `--ckpt random` probes the model's own random initialisation
(seeded by --seed, written to OUT/random_init.pt). Prints one JSON line (the keys of `evaluate`'s,
where they apply) and writes it to OUT/probe.json.
"""

import argparse
import json
import sys

from ..cli import add_config_arguments, add_loader_arguments, command, load_cli_config, output_folder, positive_int
from ..engine.evaluate import parse_views
from ..engine.probe import run_probe, write_random_init


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint file, HF folder or URL; `random`: a random init "
                                                 "of --model")
    p.add_argument("--val", required=True, help="`path label` lines to score")
    p.add_argument("--train", help="`path label` lines to fit the probes on (default: leave-one-out on --val)")
    p.add_argument("--out", type=output_folder, required=True)
    add_config_arguments(p)  # whose data settings (frames, sampling, crop, root) to use
    p.add_argument("--model", help="architecture for --ckpt random, or for checkpoints that do not record it")
    p.add_argument("--seed", type=int, default=0, help="seed of --ckpt random (default 0)")
    p.add_argument("--views", type=parse_views, default=(1, 1), help="temporal,spatial views (default 1,1)")
    p.add_argument("--k", type=positive_int, default=20, help="neighbours that vote (default 20)")
    p.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    add_loader_arguments(p)


@command(__doc__, arguments, logs=True)
def main(args: argparse.Namespace) -> int:
    cfg = load_cli_config(args.cfg, args.overrides)
    ckpt = args.ckpt
    if ckpt == "random":
        name = args.model or (cfg.model.name if cfg else None)
        if name is None:
            raise ValueError("--ckpt random needs --model NAME (or --cfg, whose model.name is used)")
        ckpt = str(write_random_init(name, args.out / "random_init.pt", cfg, args.seed))
    metrics = run_probe(cfg, ckpt, args.val, args.out, args.train, model_name=args.model, views=args.views,
                        k=args.k, linear=not args.no_linear, batch_size=args.batch_size, num_workers=args.workers)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
