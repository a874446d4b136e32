"""Does MAE pretraining earn its keep? The paper's central claim in miniature, on 2 CPU cores (~2 h).

    hiera-video mae-study --out runs/mae_study                      # synthetic data it generates
    hiera-video mae-study --out runs/mae_study_actions --classes actions
    hiera-video mae-study --out runs/mine --data my_synthetic_set   # train.csv, val.csv, classes.txt
    hiera-video mae-study --out runs/mine --unlabelled u.csv --labelled l.csv --val v.csv --classes c.txt

With the shipped recipe (synthetic_mae_recipe_pretrain, synthetic_mae_recipe_finetune), for each seed:
MAE pretraining on the unlabelled videos, finetuning on the labelled ones (by default the first 10 of
each class of the unlabelled list), the same finetuning from scratch, multi-view evaluation of both,
and frozen k-NN / linear probes of the MAE encoder and of a random one; then a mask-ratio sweep on
the first seed. Writes OUT/study.md (tables), OUT/study.png and OUT/study.json; every step has its
folder under OUT/runs or OUT/probes. Interrupted? Run the same command again: finished steps are kept.
"""

import argparse
import sys
from pathlib import Path

from ..cli import ArgumentsError, command, non_negative_int, output_folder, positive_int
from ..synthetic.actions import CLASS_SETS
from ..tasks.mae.study import Study, prepare_data


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers such as 0.5,0.75,0.9") from None
    if not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: mask ratios lie in (0, 1)")
    return values


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers such as 0,1,2") from None
    if any(v < 0 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are distinct integers >= 0")
    return values


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=output_folder, required=True, help="study folder (resumable)")
    src = p.add_argument_group("data (default: a synthetic set generated under OUT/data)")
    src.add_argument("--data", type=Path, help="folder with train.csv (unlabelled pool), val.csv, classes.txt")
    src.add_argument("--unlabelled", help="videos to pretrain on (labels, if any, unused)")
    src.add_argument("--labelled", help="`path label` lines to finetune on (default: the first --per-class of "
                                        "each class of the unlabelled list)")
    src.add_argument("--val", help="`path label` lines every figure is measured on")
    src.add_argument("--classes", help="class names file; without --data or lists: the synthetic class set to "
                                       f"generate ({', '.join(sorted(CLASS_SETS))}; default dynamics)")
    src.add_argument("--per-class", type=positive_int, default=10, help="labelled videos per class (default 10)")
    src.add_argument("--num-unlabelled", type=positive_int, default=600, help="synthetic videos to pretrain on")
    src.add_argument("--num-val", type=positive_int, default=240, help="synthetic validation videos")
    src.add_argument("--data-seed", type=int, default=100, help="seed of the generated synthetic set")
    p.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="training seeds (default 0,1,2)")
    p.add_argument("--ratios", type=_floats, default=[0.5, 0.75, 0.9],
                   help="mask ratios of the sweep, first seed (default 0.5,0.75,0.9)")
    p.add_argument("--pretrain-cfg", default="synthetic_mae_recipe_pretrain")
    p.add_argument("--finetune-cfg", default="synthetic_mae_recipe_finetune")
    p.add_argument("--pretrain", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the pretraining config")
    p.add_argument("--finetune", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the finetuning config")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data workers (default 2; 0: in this process)")


def resume_hint(args: argparse.Namespace) -> str:
    return f"run the same command again to continue the study in {args.out}"


@command(__doc__, arguments, logs=True, interrupted=resume_hint)
def main(args: argparse.Namespace) -> int:
    has_lists = args.data is not None or args.unlabelled is not None
    class_set = "dynamics"
    classes = args.classes
    if not has_lists and classes is not None:
        if classes not in CLASS_SETS:
            raise ArgumentsError(f"--classes {classes!r} without --data or --unlabelled names a synthetic class "
                                 f"set: one of {', '.join(sorted(CLASS_SETS))}")
        class_set, classes = classes, None
    data = prepare_data(args.out, args.data, args.unlabelled, args.labelled, args.val, classes,
                        per_class=args.per_class, class_set=class_set, num_unlabelled=args.num_unlabelled,
                        num_val=args.num_val, seed=args.data_seed, workers=args.workers)
    study = Study(args.out, data, args.seeds, args.ratios, args.pretrain_cfg, args.finetune_cfg,
                  args.pretrain, args.finetune, workers=args.workers)
    study.run()
    print((args.out / "study.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
