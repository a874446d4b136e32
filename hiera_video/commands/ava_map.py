"""Frame-level AVA mAP of a results file, as the official ActivityNet evaluator computes it.

    hiera-video ava-map --gt ava_val_v2.2.csv --detections results.csv \
        --labelmap ava_action_list_v2.2_for_activitynet_2019.pbtxt \
        --exclusions ava_val_excluded_timestamps_v2.2.csv

Prints JSON: mAP (a fraction), per-class AP (null for classes without ground truth, which the mean
leaves out) with ground-truth and detection counts. --capacity is the per-keyframe cap on detection
rows (50 as in the official run; 0 = no cap). Exit code 2 with a one-line error on bad files.
"""

import argparse
import json
import sys
from pathlib import Path

from ..cli import command
from ..tasks.ava.metric import frame_map


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", type=Path, required=True, help="ground truth, e.g. ava_val_v2.2.csv")
    p.add_argument("--detections", type=Path, required=True, help="results: video,time,x1,y1,x2,y2,action,score")
    p.add_argument("--labelmap", type=Path, required=True, help="the classes to evaluate (pbtxt)")
    p.add_argument("--exclusions", type=Path, help="keyframes to leave out (video_id,timestamp)")
    p.add_argument("--capacity", type=int, default=50, help="detection rows kept per keyframe (0 = all)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU needed for a match")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    result = frame_map(args.gt, args.detections, args.labelmap, args.exclusions, iou=args.iou,
                       capacity=args.capacity)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
