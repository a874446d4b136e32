"""Loader throughput: decoded and augmented training clips per second, per backend and per worker.

The training path is measured as training runs it (ClipDataset + DataLoader + collate), timed from
after the first batch. `make_pan_videos` writes panning-texture H.264 clips that cost the decoder about
what natural footage does, for when no preprocessed Kinetics set is at hand.
Details: docs/data.md (hiera_video/data/bench.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..synthetic.video import write_video
from .datasets import ClipDataset, MultiViewDataset, collate_clips, collate_views
from .guard import DEFAULT_SECONDS
from .lists import Entry, EntryList, write_list
from .transforms import RandAugment


def benchmark_loader(entries: list[Entry], backend: str = "auto", workers: int = 0, clips: int = 64,
                     mode: str = "train", batch_size: int = 8, crop_size: int = 224, num_frames: int = 16,
                     sampling_rate: int = 4, randaug: bool = True, randaug_order: str = "before_crop",
                     short_side: int | None = None, decode_timeout: float = DEFAULT_SECONDS) -> dict:
    """Clips per second through a DataLoader; `mode="eval"` times one centre view per video.
    `decode_timeout` as data.decode_timeout (> 0: each video decoded in a helper process)."""
    if mode == "train":
        ds = ClipDataset(entries, num_frames=num_frames, sampling_rate=sampling_rate, crop_size=crop_size,
                         randaug=RandAugment(7, 2, 0.5) if randaug else None, randaug_order=randaug_order,
                         short_side=short_side, backend=backend, decode_timeout=decode_timeout)
        collate = collate_clips
    elif mode == "eval":
        ds = MultiViewDataset(entries, num_frames=num_frames, sampling_rate=sampling_rate, crop_size=crop_size,
                              num_temporal_clips=1, num_spatial_crops=1, backend=backend,
                              decode_timeout=decode_timeout)
        collate = collate_views
    else:
        raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
    # Sample with replacement so that any number of clips can be timed from a small list.
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=clips + batch_size)
    loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate)
    it = iter(loader)
    next(it)  # worker start-up and first decode are not throughput
    done, bad, start = 0, 0, time.perf_counter()
    for batch in it:
        done += len(batch["video"])
        bad += len(batch.get("bad", [])) + len(batch.get("unreadable", []))
        if done >= clips:
            break
    seconds = time.perf_counter() - start
    rate = done / seconds
    return {"backend": backend, "mode": mode, "randaug_order": randaug_order if mode == "train" and randaug else None,
            "short_side": short_side if mode == "train" else None, "decode_timeout": decode_timeout, "workers": workers, "clips": done, "seconds": round(seconds, 3),
            "clips_per_s": round(rate, 2), "clips_per_s_per_worker": round(rate / max(workers, 1), 2),
            "bad_videos": bad}


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multi-scale smooth noise, uint8 [H, W, 3]: detail at several scales, like natural images."""
    img = np.zeros((height, width, 3), np.float32)
    for scale, weight in ((64, 0.55), (16, 0.3), (4, 0.15)):
        small = rng.random((height // scale + 2, width // scale + 2, 3)).astype(np.float32)
        big = np.kron(small, np.ones((scale, scale, 1), np.float32))[:height, :width]
        img += weight * big
    return (255 * (img - img.min()) / (img.max() - img.min() + 1e-6)).astype(np.uint8)


def make_pan_videos(out_dir: str | Path, num_videos: int = 8, seconds: float = 10.0, size=(426, 320),
                    fps: int = 30, gop: int = 16, seed: int = 0) -> Path:
    """Write `num_videos` panning-texture clips and a `list.csv` for them; returns the list path."""
    out_dir = Path(out_dir)
    width, height = size
    rows = []
    for v in range(num_videos):
        path = out_dir / f"pan_{v:03d}.mp4"
        if not path.exists():
            rng = np.random.default_rng([seed, v])
            tex = _texture(rng, height * 2, width * 2)
            n = int(seconds * fps)
            dx, dy = rng.uniform(-0.45, 0.45, 2) * np.array([width, height]) / n
            frames = np.empty((n, height, width, 3), np.uint8)
            for t in range(n):
                x0 = int(width / 2 + dx * t)
                y0 = int(height / 2 + dy * t)
                frames[t] = tex[y0:y0 + height, x0:x0 + width]
            write_video(path, frames, fps, gop=gop, crf=23)
        rows.append((path.name, v % 2))
    write_list(out_dir / "list.csv", rows)
    return out_dir / "list.csv"


def _private_kb() -> int:
    """This process's private memory (Private_Clean + Private_Dirty of /proc/self/smaps_rollup), in KB:
    the pages no other process shares, i.e. what a forked worker has copied or allocated."""
    fields = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    return fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


class _ListReader(torch.utils.data.Dataset):
    """What a training worker does with the list, without decoding: read each entry's path and label.
    A batch reports the worker's private memory before its first item and after this batch."""

    def __init__(self, entries):
        self.entries = entries
        self.start_kb = None

    def __len__(self):
        return len(self.entries)

    def __getitems__(self, indices: list[int]) -> list[tuple[int, int, int]]:
        if self.start_kb is None:
            self.start_kb = _private_kb()
        total = 0
        for i in indices:
            e = self.entries[i]
            total += len(e.path) + e.label
        now = _private_kb()  # once per batch: reading smaps costs about a millisecond
        return [(total, self.start_kb, now)] * len(indices)


def list_memory(num_videos: int = 240_000, workers: int = 4, storage: str = "flat", batch_size: int = 64,
                seed: int = 0) -> dict:
    """Private memory of each DataLoader worker (forked) at its first item and after reading its share of
    one epoch of a `num_videos`-line Kinetics-style list, with the entries held as `storage`: "flat" (the
    `EntryList` that `read_list` returns) or "objects" (a Python list of `Entry`, as before)."""
    rng = np.random.default_rng(seed)
    classes = [f"class_{c:03d}" for c in range(400)]
    labels = rng.integers(0, 400, num_videos)
    entries = [Entry(f"/data/kinetics400/train/{classes[y]}/{rng.bytes(6).hex()}_{rng.integers(0, 300):06d}_"
                     f"{rng.integers(10, 310):06d}.mp4", int(y), i + 1) for i, y in enumerate(labels)]
    if storage == "flat":
        entries = EntryList(entries)
    elif storage != "objects":
        raise ValueError(f"storage must be 'flat' or 'objects', got {storage!r}")
    loader = DataLoader(_ListReader(entries), batch_size=batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(seed), multiprocessing_context="fork")
    start = time.perf_counter()
    first, last = {}, {}
    for batch_index, (_, start_kb, now_kb) in enumerate(loader):
        worker = batch_index % max(workers, 1)  # batches come back in worker order, round robin
        first.setdefault(worker, int(start_kb[0]))
        last[worker] = int(now_kb[-1])
    seconds = time.perf_counter() - start
    per_worker = [{"worker": w, "start_mb": round(first[w] / 1024, 1), "end_mb": round(last[w] / 1024, 1),
                   "growth_mb": round((last[w] - first[w]) / 1024, 1)} for w in sorted(first)]
    return {"storage": storage, "num_videos": num_videos, "workers": workers, "seconds": round(seconds, 1),
            "per_worker": per_worker,
            "growth_mb_total": round(sum(w["growth_mb"] for w in per_worker), 1)}


class _Soaked(torch.utils.data.Dataset):
    """The training dataset, each batch tagged with the worker that made it and its private memory."""

    def __init__(self, dataset: ClipDataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitems__(self, keys: list) -> list[dict]:
        items = [self.dataset[k] for k in keys]
        info = torch.utils.data.get_worker_info()
        items[0]["soak"] = (info.id if info is not None else -1, _private_kb())
        return items


def _soak_collate(items: list[dict]) -> dict:
    batch = collate_clips(items)
    batch["soak"] = items[0]["soak"]
    return batch


def soak(entries, clips: int = 5000, workers: int = 4, batch_size: int = 8, crop_size: int = 112,
         num_frames: int = 16, sampling_rate: int = 4, decode_timeout: float = DEFAULT_SECONDS,
         seed: int = 0) -> dict:
    """`clips` random training clips through the real training DataLoader (ClipDataset with RandAugment,
    `workers` persistent workers, the seeded sampler's `(index, seed)` keys), recording every batch's
    time, worker and that worker's private memory: what a run of days does to throughput and memory,
    in minutes."""
    ds = _Soaked(ClipDataset(entries, num_frames=num_frames, sampling_rate=sampling_rate, crop_size=crop_size,
                             randaug=RandAugment(7, 2, 0.5), decode_timeout=decode_timeout))
    g = torch.Generator().manual_seed(seed)
    keys = [(int(i), int(s)) for i, s in zip(torch.randint(len(ds), (clips,), generator=g).tolist(),
                                             torch.randint(0, 2**62, (clips,), generator=g).tolist())]
    loader = DataLoader(ds, batch_size=batch_size, sampler=keys, num_workers=workers, collate_fn=_soak_collate,
                        persistent_workers=workers > 0, multiprocessing_context="fork" if workers else None)
    start, rows, done, bad = time.perf_counter(), [], 0, 0
    for batch in loader:
        done += len(batch["video"])
        bad += len(batch["bad"])
        worker, kb = batch["soak"]
        rows.append((round(time.perf_counter() - start, 3), done, worker, round(kb / 1024, 1)))
    seconds = time.perf_counter() - start
    per_worker = {}
    for t, _, w, mb in rows:
        per_worker.setdefault(w, []).append((t, mb))
    tenth = max(len(rows) // 10, 1)

    def rate(part):  # clips/s over a stretch of batches
        (t0, n0, _, _), (t1, n1, _, _) = part[0], part[-1]
        return round((n1 - n0) / max(t1 - t0, 1e-9), 2)

    return {"clips": done, "workers": workers, "seconds": round(seconds, 1), "bad_videos": bad,
            "clips_per_s": round(done / seconds, 2), "clips_per_s_first_tenth": rate(rows[:tenth + 1]),
            "clips_per_s_last_tenth": rate(rows[-tenth - 1:]),
            "workers_mb": {w: {"first": v[0][1], "last": v[-1][1], "max": max(mb for _, mb in v)}
                           for w, v in sorted(per_worker.items())},
            "batches": rows}
