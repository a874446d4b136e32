"""Building data lists for Kinetics-400/600/700 and Something-Something-v2 from their official
annotation files or folder layouts. Missing videos are reported, never silently dropped.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..fileio import atomic_write
from .lists import ListError, write_classes

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")


def normalize_class_name(name: str) -> str:
    """Folder and CSV spellings of a Kinetics class -> one key: 'Air_Drumming' and 'air drumming'
    match, as do quoted names."""
    name = name.strip().strip("'\"").replace("_", " ").lower()
    return re.sub(r"\s+", " ", name)


def class_lookup(classes: list[str]) -> dict[str, int]:
    return {normalize_class_name(c): i for i, c in enumerate(classes)}


@dataclass
class Split:
    name: str
    rows: list[tuple[str, int | None]] = field(default_factory=list)  # (absolute path, label or None)
    missing: list[str] = field(default_factory=list)  # what the annotations name but the disk lacks


def index_videos(root: Path) -> dict[str, Path]:
    """Every video file under `root` by file stem (clips may sit flat or in class folders)."""
    index: dict[str, Path] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.lower().endswith(VIDEO_EXTENSIONS):
                index.setdefault(os.path.splitext(f)[0], Path(dirpath) / f)
    return index


def kinetics_from_folders(videos_dir: str | os.PathLike, classes: list[str]) -> list[Split]:
    """Lists from a tree `split/class_name/*.mp4` (class folders may use '_' for spaces)."""
    videos_dir = Path(videos_dir)
    lookup = class_lookup(classes)
    splits = []
    for split_dir in sorted(p for p in videos_dir.iterdir() if p.is_dir()):
        split = Split(split_dir.name)
        class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
        unknown = [p.name for p in class_dirs if normalize_class_name(p.name) not in lookup]
        if unknown:
            raise ListError(f"{split_dir}: {len(unknown)} class folders are not in the class list "
                            f"({len(classes)} classes): {unknown[:5]}")
        for class_dir in class_dirs:
            label = lookup[normalize_class_name(class_dir.name)]
            for f in sorted(class_dir.rglob("*")):
                if f.suffix.lower() in VIDEO_EXTENSIONS:
                    split.rows.append((str(f), label))
        splits.append(split)
    if not splits:
        raise ListError(f"{videos_dir}: no split folders (expected split/class_name/*.mp4)")
    return splits


def kinetics_clip_name(youtube_id: str, start: str | float, end: str | float) -> str:
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def kinetics_from_csv(csv_path: str | os.PathLike, clips_dir: str | os.PathLike, classes: list[str],
                      index: dict[str, Path] | None = None) -> Split:
    """A list from an official annotation CSV (`label,youtube_id,time_start,time_end,split[,is_cc]`)
    and a folder of clips named `{youtube_id}_{start:06d}_{end:06d}.*`. Rows without a label column
    (unlabelled test sets) get label None."""
    csv_path = Path(csv_path)
    lookup = class_lookup(classes)
    index = index_videos(Path(clips_dir)) if index is None else index
    split = Split(csv_path.stem)
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"youtube_id", "time_start", "time_end"}
        if not need <= set(reader.fieldnames or []):
            raise ListError(f"{csv_path}: expected columns label,youtube_id,time_start,time_end,split; "
                            f"found {reader.fieldnames}")
        for n, row in enumerate(reader, 2):
            label = None
            if row.get("label"):
                key = normalize_class_name(row["label"])
                if key not in lookup:
                    raise ListError(f"{csv_path}:{n}: class {row['label']!r} is not in the class list "
                                    f"({len(classes)} classes); pass the matching --classes file")
                label = lookup[key]
            name = kinetics_clip_name(row["youtube_id"], row["time_start"], row["time_end"])
            if name in index:
                split.rows.append((str(index[name]), label))
            else:
                split.missing.append(name)
    return split


def ssv2_classes(labels_json: str | os.PathLike) -> list[str]:
    """The 174 templates of `something-something-v2-labels.json` ({template: "id"}), by id."""
    with open(labels_json, encoding="utf-8") as f:
        labels = json.load(f)
    by_id = sorted(labels.items(), key=lambda kv: int(kv[1]))
    if [int(i) for _, i in by_id] != list(range(len(by_id))):
        raise ListError(f"{labels_json}: ids are not 0..{len(by_id) - 1}")
    return [name for name, _ in by_id]


def ssv2_split(split_json: str | os.PathLike, labels_json: str | os.PathLike, videos_dir: str | os.PathLike,
               index: dict[str, Path] | None = None) -> Split:
    """A list from `something-something-v2-{train,validation}.json`: label = labels[template without
    brackets]; videos `{id}.webm` (or any extension) under `videos_dir`."""
    with open(labels_json, encoding="utf-8") as f:
        labels = {k: int(v) for k, v in json.load(f).items()}
    with open(split_json, encoding="utf-8") as f:
        items = json.load(f)
    index = index_videos(Path(videos_dir)) if index is None else index
    split = Split(Path(split_json).stem.replace("something-something-v2-", ""))
    for item in items:
        label = None
        if "template" in item:
            template = item["template"].replace("[", "").replace("]", "")
            if template not in labels:
                raise ListError(f"{split_json}: video {item['id']}: template {template!r} is not in {labels_json}")
            label = labels[template]
        vid = str(item["id"])
        if vid in index:
            split.rows.append((str(index[vid]), label))
        else:
            split.missing.append(vid)
    return split


def write_split(split: Split, out_dir: str | os.PathLike) -> Path:
    """`out_dir/{split}.csv` with paths relative to out_dir (so the folder can move with its videos
    when they sit below it), plus `missing_{split}.txt` when videos are missing."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    list_path = out_dir / f"{split.name}.csv"
    lines = []
    for path, label in split.rows:
        rel = os.path.relpath(path, out_dir)
        lines.append((rel if label is None else f"{rel} {label}") + "\n")
    atomic_write(list_path, "".join(lines))
    missing = out_dir / f"missing_{split.name}.txt"
    if split.missing:
        missing.write_text("".join(m + "\n" for m in split.missing), encoding="utf-8")
    elif missing.exists():
        missing.unlink()
    return list_path


def write_lists(out_dir: str | os.PathLike, classes: list[str], splits: list[Split]) -> list[str]:
    """`classes.txt` and every split's list in `out_dir`; one summary line per split."""
    write_classes(Path(out_dir) / "classes.txt", classes)
    lines = []
    for split in splits:
        path = write_split(split, out_dir)
        extra = f", {len(split.missing)} missing (listed in missing_{split.name}.txt)" if split.missing else ""
        lines.append(f"{path}: {len(split.rows)} videos{extra}")
    return lines
