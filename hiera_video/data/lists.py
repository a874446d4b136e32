"""Data lists (PySlowFast / VideoMAE style) and class-name files.

A list has one video per line: `path label`, split on the *last* whitespace so that paths may contain
spaces, or `path,label`. Blank lines and lines starting with `#` are skipped. Relative paths resolve
against a root, by default the list file's folder. A class file has one name per line; the line index
is the label. Both must be UTF-8 without a byte-order mark: anything else is an error naming the file
and line (a BOM would otherwise become part of the first path or class name). See
data_lists/README.md for examples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ListError
from ..fileio import atomic_write
from ..resources import classes_path, list_class_lists


@dataclass(frozen=True)
class Entry:
    path: str  # resolved against the root
    label: int  # -1 for an unlabelled list
    line: int  # 1-based line in the list file, for messages


class EntryList(Sequence[Entry]):
    """The entries of a list in three flat arrays: the UTF-8 bytes of every path with their offsets, the
    labels and the line numbers. It reads like a list of `Entry`, but holds no Python object per line:
    a forked DataLoader worker that reads entries of a list of objects writes their reference counts and
    so copies every page it touches (pytorch/pytorch#13246; measured in the README, *Kinetics-sized
    lists*), while these arrays stay shared. Indexing builds the one `Entry` asked for."""

    def __init__(self, entries: Iterable[Entry] = ()):
        entries = list(entries)
        self._fill([e.path for e in entries], [e.label for e in entries], [e.line for e in entries])

    @classmethod
    def from_columns(cls, paths: Sequence[str], labels: Sequence[int], lines: Sequence[int]) -> EntryList:
        out = cls.__new__(cls)
        out._fill(paths, labels, lines)
        return out

    def _fill(self, paths: Sequence[str], labels: Sequence[int], lines: Sequence[int]) -> None:
        encoded = [p.encode("utf-8", "surrogateescape") for p in paths]
        self._offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) for b in encoded], out=self._offsets[1:])
        self._paths = np.frombuffer(b"".join(encoded), np.uint8).copy()  # its own buffer: no bytes object kept
        self.labels = np.asarray(labels, np.int64)
        self.lines = np.asarray(lines, np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        if isinstance(index, slice):
            rows = range(*index.indices(len(self)))
            return EntryList.from_columns([self[i].path for i in rows], self.labels[rows], self.lines[rows])
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"entry {index} of a list of {len(self)}")
        start, end = self._offsets[index], self._offsets[index + 1]
        path = self._paths[start:end].tobytes().decode("utf-8", "surrogateescape")
        return Entry(path, int(self.labels[index]), int(self.lines[index]))

    def __iter__(self) -> Iterator[Entry]:
        return (self[i] for i in range(len(self)))

    def __add__(self, other: Iterable[Entry]) -> EntryList:
        return EntryList([*self, *other])

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"EntryList({len(self)} entries)"


def _read_lines(path: Path) -> list[str]:
    """The file's lines (without line ends), decoded as UTF-8 one by one so that an error can name its line."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        raise ListError(f"{path}:1: starts with a UTF-8 byte-order mark; save the file as UTF-8 without BOM")
    lines = []
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ListError(f"{path}:{n}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                            f"re-encode the file as UTF-8") from None
    return lines


def _parse_label(text: str) -> int | None:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return None


def parse_line(line: str) -> tuple[str, int | None]:
    """`'a b.mp4 3'` -> ('a b.mp4', 3); `'x.mp4,3'` -> ('x.mp4', 3); `'x.mp4'` -> ('x.mp4', None);
    `'frames/x 300 3'` (mmaction2's rawframes: folder, frame count, label) -> ('frames/x', 3)."""
    line = line.strip()
    if "," in line:
        head, _, tail = line.rpartition(",")
        label = _parse_label(tail)
        if label is not None:
            return head.strip(), label
    fields = line.split()
    if len(fields) == 3 and fields[1].isdigit() and _parse_label(fields[2]) is not None:
        return fields[0], _parse_label(fields[2])  # mmaction2's rawframes: `frame_dir total_frames label`
    parts = line.rsplit(None, 1)
    if len(parts) == 2:
        label = _parse_label(parts[1])
        if label is not None:
            return parts[0], label
    return line, None


def read_list(list_path: str | os.PathLike, root: str | os.PathLike | None = None, labelled: bool = True,
              num_classes: int | None = None) -> EntryList:
    """Entries of a list file (an `EntryList`: a sequence of `Entry` in flat arrays). `labelled=False`
    accepts lines without labels (label -1), e.g. for embedding extraction; with `num_classes`, labels
    must lie in [0, num_classes)."""
    list_path = Path(list_path)
    if not list_path.is_file():
        raise ListError(f"data list not found: {list_path}")
    base = Path(root) if root is not None else list_path.parent
    paths, labels, lines = [], [], []
    for n, raw in enumerate(_read_lines(list_path), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        path, label = parse_line(raw)
        if label is None:
            if labelled:
                raise ListError(f"{list_path}:{n}: no integer label in {raw.strip()!r} "
                                f"(expected 'path label' or 'path,label')")
            label = -1
        elif label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise ListError(f"{list_path}:{n}: label {label} is outside {bound}")
        paths.append(str(base / path))
        labels.append(label)
        lines.append(n)
    if not paths:
        raise ListError(f"{list_path}: the list is empty")
    return EntryList.from_columns(paths, labels, lines)


def write_list(list_path: str | os.PathLike, rows: list[tuple[str, int]]) -> None:
    """Write `path label` lines (atomically: a half-written list never replaces a good one)."""
    for path, _ in rows:
        if "\n" in path:
            raise ListError(f"path with a newline cannot be listed: {path!r}")
    atomic_write(list_path, "".join(f"{path} {label}\n" for path, label in rows))


def read_classes(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (line index = label). `path` may also name a shipped list
    (`kinetics400`, `ssv2`, ...: hiera_video/data_lists/)."""
    found = classes_path(path)
    if found is None:
        raise ListError(f"class file not found: {path} (shipped lists: {', '.join(list_class_lists())})")
    path = found
    names = [line.strip() for line in _read_lines(path)]
    while names and not names[-1]:
        names.pop()
    if any(not n for n in names):
        raise ListError(f"{path}:{names.index('') + 1}: empty class name")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ListError(f"{path}: class {dup!r} appears twice")
    return names


def write_classes(path: str | os.PathLike, names: list[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
