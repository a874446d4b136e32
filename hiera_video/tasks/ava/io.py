"""Readers and writers for the official AVA v2.2 files (label map, exclusions, annotations, person
proposals, detections), and the frame layout of extracted keyframes.

Boxes are (x1, y1, x2, y2) normalised to [0, 1]; a keyframe is keyed by (video_id, whole second).
Malformed rows raise `AvaFormatError` naming `path:line`.
Details: docs/ava.md (hiera_video/tasks/ava/io.py).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ...fileio import atomic_path, atomic_write

Box = tuple[float, float, float, float]  # x1, y1, x2, y2, normalised to [0, 1]
Key = tuple[str, int]  # (video_id, timestamp in whole seconds)

# Coordinates a hair outside [0, 1] (rounding in third-party files) are clipped; more is an error.
BOX_SLOP = 1e-3


class AvaFormatError(ValueError):
    """A malformed AVA file; the message names the file and line."""


def _rows(path: str | os.PathLike, columns: tuple[int, ...], what: str) -> Iterable[tuple[int, list[str]]]:
    """(line number, cells) of the non-blank CSV rows of `path`, each with one of the allowed column counts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for row in reader:
            n = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) not in columns:
                expected = " or ".join(str(c) for c in columns)
                raise AvaFormatError(f"{path}:{n}: expected {expected} columns for {what}, got {len(row)} "
                                     f"({','.join(row)})")
            yield n, [cell.strip() for cell in row]


def _int(text: str, path, n: int, row: list[str], field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise AvaFormatError(f"{path}:{n}: {field} {text!r} is not an integer ({','.join(row)})") from None


def _float(text: str, path, n: int, row: list[str], field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise AvaFormatError(f"{path}:{n}: {field} {text!r} is not a finite number ({','.join(row)})")
    return value


def _key(path, n: int, row: list[str]) -> Key:
    if not row[0]:
        raise AvaFormatError(f"{path}:{n}: empty video id ({','.join(row)})")
    return row[0], _int(row[1], path, n, row, "timestamp")


def _box(path, n: int, row: list[str]) -> Box:
    """Columns 2-5 as a validated box, clipped into [0, 1]."""
    x1, y1, x2, y2 = (_float(row[i], path, n, row, name) for i, name in zip(range(2, 6), ("x1", "y1", "x2", "y2")))
    if min(x1, y1, x2, y2) < -BOX_SLOP or max(x1, y1, x2, y2) > 1 + BOX_SLOP:
        raise AvaFormatError(f"{path}:{n}: box coordinates must be normalised to [0, 1] ({','.join(row)})")
    x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2))
    if not (x1 < x2 and y1 < y2):
        raise AvaFormatError(f"{path}:{n}: empty box, need x1 < x2 and y1 < y2 ({','.join(row)})")
    return x1, y1, x2, y2


# --------------------------------------------------------------------------------------------- label map

_BLOCK = re.compile(r"^(item|label)\s*\{$")
_FIELD = re.compile(r"^(\w+)\s*:\s*(.*?)$")


def read_labelmap(path: str | os.PathLike) -> list[tuple[int, str]]:
    """[(id, name)] in file order from a pbtxt label map. Accepts `id:` and `label_id:`, `item {` and
    `label {` blocks, any indentation, `#` comments, and ignores other fields such as `label_type:`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label map file not found: {path}")
    items: list[tuple[int, str]] = []
    seen: dict[int, int] = {}
    current: dict | None = None  # fields of the open block, plus the line it started on
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _BLOCK.match(line):
            if current is not None:
                raise AvaFormatError(f"{path}:{n}: new block before the one on line {current['line']} "
                                     f"was closed ({line})")
            current = {"line": n}
        elif line == "}":
            if current is None:
                raise AvaFormatError(f"{path}:{n}: '}}' without an open block")
            if "id" not in current or "name" not in current:
                missing = "id" if "id" not in current else "name"
                raise AvaFormatError(f"{path}:{current['line']}: block has no {missing}")
            if current["id"] in seen:
                raise AvaFormatError(f"{path}:{current['line']}: id {current['id']} already used on "
                                     f"line {seen[current['id']]}")
            seen[current["id"]] = current["line"]
            items.append((current["id"], current["name"]))
            current = None
        elif (m := _FIELD.match(line)) and current is not None:
            field, value = m.groups()
            if field == "name":
                if len(value) < 2 or value[0] != '"' or value[-1] != '"':
                    raise AvaFormatError(f"{path}:{n}: name must be a quoted string ({line})")
                current["name"] = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            elif field in ("id", "label_id"):
                current["id"] = _int(value, path, n, [line], field)
        else:
            raise AvaFormatError(f"{path}:{n}: expected 'item {{', 'name: \"...\"', 'id: N' or '}}' ({line})")
    if current is not None:
        raise AvaFormatError(f"{path}:{current['line']}: block is never closed")
    if not items:
        raise AvaFormatError(f"{path}: the label map has no items")
    return items


def write_labelmap(path: str | os.PathLike, items: list[tuple[int, str]]) -> None:
    """The layout of the official ActivityNet label map (`item { name: "..." id: N }`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = []
    for class_id, name in items:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        blocks.append(f'item {{\n  name: "{quoted}"\n  id: {int(class_id)}\n}}\n')
    atomic_write(path, "".join(blocks))


# ------------------------------------------------------------------------------------------- CSV files

def read_exclusions(path: str | os.PathLike) -> set[Key]:
    """Keyframes to leave out of evaluation (`video_id,timestamp` rows)."""
    return {_key(path, n, row) for n, row in _rows(path, (2,), "exclusions")}


def read_annotations(path: str | os.PathLike) -> dict[Key, list[tuple[Box, list[int]]]]:
    """Ground truth grouped into people: {keyframe: [(box, sorted unique action ids)]}, keyframes in file
    order, people in first-seen order. Rows of one person share a person_id (7-column files: a box)."""
    out: dict[Key, dict[tuple, tuple[Box, set[int]]]] = {}
    for n, row in _rows(path, (7, 8), "annotations"):
        key, box = _key(path, n, row), _box(path, n, row)
        action = _int(row[6], path, n, row, "action id")
        person = row[7] if len(row) == 8 and row[7] else None
        if person is not None:
            _int(person, path, n, row, "person id")
        # The box is part of the identity as well: were a person_id ever reused for another box in one
        # keyframe, merging the two would silently drop a ground-truth box.
        people = out.setdefault(key, {})
        people.setdefault((person, box), (box, set()))[1].add(action)
    return {key: [(box, sorted(actions)) for box, actions in people.values()] for key, people in out.items()}


def read_proposals(path: str | os.PathLike, min_score: float = 0.0) -> dict[Key, list[tuple[Box, float]]]:
    """Person boxes per keyframe with score >= min_score, best first; a box listed twice in a keyframe
    keeps its best score. Rows: AVA columns with an (ignored, usually empty) action and a score, or 7
    columns without the action."""
    out: dict[Key, dict[Box, float]] = {}
    for n, row in _rows(path, (7, 8), "proposals"):
        key, box = _key(path, n, row), _box(path, n, row)
        score = _float(row[-1], path, n, row, "score")
        if score < min_score:
            continue
        boxes = out.setdefault(key, {})
        boxes[box] = max(score, boxes.get(box, -math.inf))
    # sorted() is stable: equal scores keep file order.
    return {key: sorted(boxes.items(), key=lambda item: -item[1]) for key, boxes in out.items()}


def iter_detections(path: str | os.PathLike) -> Iterator[tuple[str, int, Box, int, float]]:
    """The rows of a results file in the submission format, one at a time (results files that score
    every class of every box run to millions of rows; the evaluator keeps only the best per keyframe)."""
    for n, row in _rows(path, (8,), "detections"):
        video_id, timestamp = _key(path, n, row)
        yield (video_id, timestamp, _box(path, n, row), _int(row[6], path, n, row, "action id"),
               _float(row[7], path, n, row, "score"))


def read_detections(path: str | os.PathLike) -> list[tuple[str, int, Box, int, float]]:
    """Rows of a results file in the submission format, in file order."""
    return list(iter_detections(path))


def write_detections(path: str | os.PathLike, rows: Iterable[tuple[str, int, Box, int, float]]) -> None:
    """Write a results file in the submission format (atomically: a half-written file never replaces a
    good one). Coordinates and scores get 6 decimals, so reading back is exact to 1e-6."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        for video_id, timestamp, box, action, score in rows:
            writer.writerow([video_id, f"{int(timestamp):04d}", *(f"{v:.6f}" for v in box), int(action),
                             f"{score:.6f}"])


# --------------------------------------------------------------------------------------- frame layout

def keyframe_index(timestamp: int, fps: int = 30, start: int = 900) -> int:
    """0-based index of a keyframe in the sorted frames extracted from a video's 15-minute cut, whose
    first frame (`{video_id}_000001.jpg`) is at `start` seconds."""
    if timestamp < start:
        raise ValueError(f"timestamp {timestamp} is before the start of the cut ({start} s)")
    return (timestamp - start) * fps


def frame_path(frames_root: str | os.PathLike, video_id: str, index: int) -> Path:
    """frames_root/video_id/{video_id}_{index + 1:06d}.jpg (index 0-based, the files 1-based)."""
    if index < 0:
        raise ValueError(f"frame index {index} is negative")
    return Path(frames_root) / video_id / f"{video_id}_{index + 1:06d}.jpg"
