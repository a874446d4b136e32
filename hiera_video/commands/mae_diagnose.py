"""Is an MAE encoder healthy? Per-stage effective rank of its features beside a random initialisation's,
and the MAE loss with each multi-scale fusion branch removed (what the decoder relies on).

    hiera-video mae-diagnose --cfg synthetic_mae_recipe_pretrain --ckpt runs/mae/model_last.pt \\
        --list data/val.csv --out runs/mae/diagnose

A stage whose rank fell far below the random encoder's has collapsed (too high a pretraining lr did that
in docs/mae_study.md); a last stage whose removal barely changes the loss is not read by the decoder, so
the deep stages learned little (normalised-pixel targets on the synthetic videos did that). Both are
printed as warnings; the figures go to OUT/diagnose.json (with --out) and stdout.
"""

import argparse
import json
import sys

from ..cli import add_config_arguments, command, load_cli_config, output_folder, positive_int
from ..tasks.mae.diagnose import diagnose


def arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, required=True)  # whose data settings (frames, sampling, crop) cut the clips
    p.add_argument("--ckpt", required=True, help="an MAE checkpoint (any encoder: stage statistics only)")
    p.add_argument("--list", required=True, help="videos to measure on (labels not needed)")
    p.add_argument("--out", type=output_folder, help="folder for diagnose.json")
    p.add_argument("--videos", type=positive_int, default=64, help="videos to use (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random encoder and the masks")


@command(__doc__, arguments, logs=True)
def main(args: argparse.Namespace) -> int:
    cfg = load_cli_config(args.cfg, args.overrides)
    result = diagnose(cfg, args.ckpt, args.list, args.out, args.videos, args.seed)
    print(f"{'stage':>5} {'channels':>8} {'eff. rank':>9} {'(random)':>8} {'common share':>12} {'(random)':>8}")
    for r in result["stages"]:
        print(f"{r['stage']:>5} {r['channels']:>8} {r['effective_rank']:>9.1f} {r['random_effective_rank']:>8.1f} "
              f"{r['common_share']:>12.2f} {r['random_common_share']:>8.2f}")
    if "fusion" in result:
        f = result["fusion"]
        parts = ", ".join(f"without {k} {v:+.1%}" for k, v in f["increase_without"].items())
        print(f"MAE loss at mask {f['mask_ratio']}: {f['loss']:.4f}; {parts}")
    for w in result["warnings"]:
        print(f"warning: {w}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
