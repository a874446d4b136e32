"""Build Something-Something-v2 data lists (`train.csv`, `validation.csv` of `path label` lines, and
`classes.txt` with the 174 templates) from the official JSON annotations and the folder of
`{id}.webm` videos. Label = labels[template with the brackets removed].

    hiera-video prepare_ssv2.py --labels labels/something-something-v2-labels.json \\
        --splits labels/something-something-v2-train.json labels/something-something-v2-validation.json \\
        --videos /data/ssv2/20bn-something-something-v2 --out lists/ssv2
"""

import argparse
import sys
from pathlib import Path

from ..cli import command
from ..data.prepare import index_videos, ssv2_classes, ssv2_split, write_lists


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", type=Path, required=True, help="something-something-v2-labels.json")
    p.add_argument("--splits", type=Path, nargs="+", required=True, help="-train.json, -validation.json, ...")
    p.add_argument("--videos", type=Path, required=True, help="folder of {id}.webm")
    p.add_argument("--out", type=Path, required=True)


# KeyError: an annotation without a field these files have (the message is the field's name)
@command(__doc__, arguments, usage_errors=(KeyError,))
def main(args: argparse.Namespace) -> int:
    classes = ssv2_classes(args.labels)
    index = index_videos(args.videos)
    splits = [ssv2_split(s, args.labels, args.videos, index) for s in args.splits]
    for line in write_lists(args.out, classes, splits):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
