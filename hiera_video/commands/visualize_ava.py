"""Person boxes with their top actions drawn on AVA keyframes, one PNG per keyframe.

    hiera-video visualize-ava --frames DATA/frames --detections runs/x/eval_ava/detections.csv \\
        --labelmap DATA/annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt --out runs/x/vis \\
        [--gt DATA/annotations/ava_val_v2.2.csv] [--top 3] [--min-score 0.2] [--max-keyframes 20] [--scale 2]

Detections (the submission format) are grouped into people by box; each box is green and labelled above
with its --top best actions scoring >= --min-score (`0.93 walk`), or drawn thin and unlabelled when none
is left. --gt adds the ground truth as thinner dashed magenta boxes labelled below. Images are
OUT/{video_id}_{timestamp:04d}.png for the first --max-keyframes keyframes by video and time, the frame
enlarged --scale times (labels are 11-pixel text drawn after enlarging). Frames are read as extracted for AVA:
FRAMES/{video_id}/{video_id}_{index + 1:06d}.jpg with index (timestamp - 900) * 30.
"""

import argparse
import sys
from pathlib import Path

import av  # noqa: F401  (PyAV before anything imports decord: see hiera_video/data/decode.py)

from ..cli import command
from ..tasks.ava.viz import visualize_ava


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=Path, required=True, help="root of the extracted keyframe JPEGs")
    p.add_argument("--detections", type=Path, required=True, help="results CSV (video,t,x1,y1,x2,y2,action,score)")
    p.add_argument("--labelmap", type=Path, required=True, help="action list .pbtxt")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    p.add_argument("--gt", type=Path, help="ground-truth CSV to draw as well (e.g. ava_val_v2.2.csv)")
    p.add_argument("--top", type=int, default=3, help="actions shown per box")
    p.add_argument("--min-score", type=float, default=0.2, help="hide actions scoring below this")
    p.add_argument("--max-keyframes", type=int, default=20, help="write at most this many images")
    p.add_argument("--scale", type=int, default=2, help="pixel zoom of the frame")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    written, total = visualize_ava(args.frames, args.detections, args.labelmap, args.out, args.gt, args.top,
                                   args.min_score, args.max_keyframes, args.scale)
    n = len(written)
    print(f"wrote {n} image{'s' * (n != 1)} to {args.out} ({total} keyframe{'s' * (total != 1)} with detections)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
