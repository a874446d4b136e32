"""Frame-level AVA mAP, reproducing the official ActivityNet evaluator
(`Evaluation/get_ava_performance.py` and the TF object-detection code it vendors).

Its semantics are kept on purpose, including the surprising ones: at most `capacity` (50) detections
per keyframe, cut as heapq cuts them; detections on keyframes without ground truth are false positives;
a detection takes the highest-IoU box even when that box is taken; a class without ground truth is left
out of the mean.
Details: docs/ava.md (hiera_video/tasks/ava/metric.py).
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from hiera_video.tasks.ava.io import Box, Key, iter_detections, read_annotations, read_exclusions, read_labelmap

DetRow = tuple[str, int, Box, int, float]  # video_id, timestamp, (x1, y1, x2, y2), action_id, score


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of [N, 4] and [M, 4] boxes (x1, y1, x2, y2), as np_box_ops.iou: areas without +1."""
    iw = np.maximum(0.0, np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    ih = np.maximum(0.0, np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
    inter = ih * iw
    area_a = (a[:, 3] - a[:, 1]) * (a[:, 2] - a[:, 0])
    area_b = (b[:, 3] - b[:, 1]) * (b[:, 2] - b[:, 0])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def match(det_boxes: np.ndarray, gt_boxes: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """True-positive flags of one keyframe's detections of one class, given in descending score order."""
    tp = np.zeros(len(det_boxes), dtype=bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    overlaps = box_iou(det_boxes, gt_boxes)
    best = overlaps.argmax(axis=1)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    # Sequential on purpose: whether a box is still free depends on the higher-scoring detections.
    for i, g in enumerate(best):
        if overlaps[i, g] >= iou and not taken[g]:
            tp[i] = taken[g] = True
    return tp


def average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """VOC AP as metrics.compute_precision_recall + compute_average_precision (0 without detections)."""
    if len(scores) == 0:
        return 0.0
    # The same (unstable) argsort as the official, so that tied scores are ordered identically.
    tp = tp[np.argsort(scores)[::-1]]
    cum_tp = np.cumsum(tp).astype(float)
    cum_fp = np.cumsum(~tp).astype(float)
    precision = np.concatenate([[0.0], cum_tp / (cum_tp + cum_fp), [0.0]])
    recall = np.concatenate([[0.0], cum_tp / num_gt, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the monotone envelope
    steps = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def _capped(det_rows: Iterable[DetRow], classes: set[int], capacity: int) -> dict[Key, list[tuple]]:
    """Per keyframe, the rows the official read_csv keeps, best first: (score, action, y1, x1, y2, x2)."""
    heaps: dict[Key, list[tuple]] = {}
    for video_id, timestamp, (x1, y1, x2, y2), action, score in det_rows:
        if action not in classes:
            continue
        # The official tuple, field order included: on equal scores heapq compares the rest.
        entry = (float(score), int(action), y1, x1, y2, x2)
        heap = heaps.setdefault((video_id, int(timestamp)), [])
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    return {key: sorted(heap, key=lambda e: -e[0]) for key, heap in heaps.items()}


def frame_map_from_rows(gt_rows: Mapping[Key, list[tuple[Box, list[int]]]], det_rows: Iterable[DetRow],
                        labelmap_items: list[tuple[int, str]], excluded: Iterable[Key] = (),
                        iou: float = 0.5, capacity: int = 50) -> dict:
    """Frame mAP of in-memory rows. gt_rows: {(video_id, timestamp): [(box, action ids)]} as
    read_annotations returns it; det_rows: (video_id, timestamp, box, action_id, score) as
    read_detections returns them; labelmap_items: [(id, name)]. Returns {"mAP": fraction, "per_class":
    [{"id", "name", "ap" (None without ground truth), "gt", "detections"}], counts}."""
    if not labelmap_items:
        raise ValueError("the label map is empty")
    if min(i for i, _ in labelmap_items) < 1:
        raise ValueError("AVA class ids start at 1")  # as the official evaluator demands
    classes = {int(i) for i, _ in labelmap_items}
    excluded = {(v, int(t)) for v, t in excluded}

    # Ground truth, one (box, class) instance per action of a person, as the official's one-per-row,
    # indexed by keyframe and class.
    gt: dict[tuple[Key, int], list[Box]] = {}
    for (video_id, timestamp), people in gt_rows.items():
        key = (video_id, int(timestamp))
        if key in excluded:
            continue
        for box, actions in people:
            for a in actions:
                if a in classes:
                    gt.setdefault((key, a), []).append(box)
    num_gt: Counter[int] = Counter()
    for (_, c), boxes in gt.items():
        num_gt[c] += len(boxes)
    if not num_gt:
        raise ValueError("no ground-truth boxes of the label map's classes (after exclusions)")
    gt_boxes = {k: np.array(boxes, dtype=float) for k, boxes in gt.items()}

    scores: dict[int, list[np.ndarray]] = {c: [] for c in classes}
    flags: dict[int, list[np.ndarray]] = {c: [] for c in classes}
    det_keyframes = 0
    for key, entries in _capped(det_rows, classes, capacity).items():
        if key in excluded:
            continue
        det_keyframes += 1
        e = np.array(entries, dtype=float)  # columns: score, action, y1, x1, y2, x2; best first
        e = e[(e[:, 2] < e[:, 4]) & (e[:, 3] < e[:, 5])]
        # One run of rows per class; the stable sort keeps each run in score order.
        e = e[np.argsort(e[:, 1], kind="stable")]
        present, starts = np.unique(e[:, 1].astype(int), return_index=True)
        for c, rows in zip(present.tolist(), np.split(e, starts[1:])):
            scores[c].append(rows[:, 0])
            g = gt_boxes.get((key, c))
            flags[c].append(match(rows[:, [3, 2, 5, 4]], g, iou) if g is not None
                            else np.zeros(len(rows), dtype=bool))

    per_class = []
    for class_id, name in labelmap_items:
        s = np.concatenate(scores[class_id]) if scores[class_id] else np.zeros(0)
        t = np.concatenate(flags[class_id]) if flags[class_id] else np.zeros(0, dtype=bool)
        ap = average_precision(s, t, num_gt[class_id]) if num_gt[class_id] else None
        per_class.append({"id": class_id, "name": name, "ap": ap, "gt": num_gt[class_id], "detections": len(s)})
    aps = [c["ap"] for c in per_class if c["ap"] is not None]
    return {"mAP": float(np.mean(aps)), "per_class": per_class, "num_classes_evaluated": len(aps),
            "num_keyframes": len({key for key, _ in gt}), "num_detection_keyframes": det_keyframes,
            "num_gt": sum(num_gt.values()), "num_detections": sum(c["detections"] for c in per_class),
            "iou": iou, "capacity": capacity}


def frame_map(groundtruth: str | os.PathLike, detections: str | os.PathLike, labelmap: str | os.PathLike,
              exclusions: str | os.PathLike | None = None, iou: float = 0.5, capacity: int = 50) -> dict:
    """Frame mAP of a results file against an AVA ground-truth file (see frame_map_from_rows)."""
    excluded = read_exclusions(exclusions) if exclusions is not None else set()
    # Streamed: only the rows that survive the per-keyframe cap are held in memory.
    return frame_map_from_rows(read_annotations(groundtruth), iter_detections(detections),
                               read_labelmap(labelmap), excluded, iou=iou, capacity=capacity)
