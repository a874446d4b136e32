"""The synthetic dataset: the video writer's round trip, time-reversed class pairs measured on the
rendered pixels, determinism (seed, worker count, dataset size), list files, resuming, and the CLI."""

import json
import math
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from hiera_video.synthetic.actions import (CLASS_SETS, CLASSES, DURATION_RANGE, DYNAMICS_CLASSES, FPS_CHOICES,
                                        PATH_CLASSES, SIZE_CHOICES, draw_clip, make_action_dataset, plan_clip,
                                        render_clip, write_video)

REPO = Path(__file__).resolve().parents[1]
PAIRS = [("move_right", "move_left"), ("move_down", "move_up"), ("grow", "shrink"),
         ("rotate_clockwise", "rotate_counterclockwise")]  # (forward, its time reversal)


def read_pyav(path) -> tuple[np.ndarray, Fraction, list[bool]]:
    """All frames [T, H, W, 3] uint8, the stream's average rate, and which frames are keyframes."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = list(c.decode(stream))
        return (np.stack([f.to_ndarray(format="rgb24") for f in frames]), stream.average_rate,
                [f.key_frame for f in frames])


def smooth_clip(T=20, H=64, W=96) -> np.ndarray:
    """[T, H, W, 3] uint8: colour ramps drifting right, smooth enough for a lossy codec."""
    t, y, x = np.meshgrid(np.arange(T), np.arange(H), np.arange(W), indexing="ij")
    rgb = [128 + 100 * np.sin((x - 2 * t) / 15), 128 + 100 * np.cos(y / 11), 60 + 2 * t + x]
    return np.clip(np.stack(rgb, -1), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# write_video
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("vp9", ".webm"), ("vp8", ".webm")])
def test_write_video_round_trip(tmp_path, codec, suffix):
    frames = smooth_clip()
    path = write_video(tmp_path / "a" / "b" / f"clip{suffix}", frames, fps=15, codec=codec, gop=5)
    assert path.exists() and sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp left
    decoded, rate, keys = read_pyav(path)
    assert decoded.shape == frames.shape
    assert rate == 15
    assert np.abs(decoded.astype(int) - frames).mean() < 8
    key_at = np.flatnonzero(keys)
    assert key_at[0] == 0 and np.diff(key_at).max() <= 5  # the GOP bounds the distance between keyframes
    if codec == "h264":
        decord = pytest.importorskip("decord")
        vr = decord.VideoReader(str(path))
        assert len(vr) == len(frames) and vr.get_avg_fps() == pytest.approx(15)
        assert np.abs(vr.get_batch(list(range(len(vr)))).asnumpy().astype(int) - frames).mean() < 8


def test_write_video_errors_name_the_culprit(tmp_path):
    odd = np.zeros((2, 63, 64, 3), np.uint8)
    with pytest.raises(ValueError, match=r"64x63"):
        write_video(tmp_path / "odd.mp4", odd, 12)
    with pytest.raises(ValueError, match="suffix"):
        write_video(tmp_path / "clip.webm", odd, 12, codec="h264")
    with pytest.raises(ValueError, match="float32"):
        write_video(tmp_path / "clip.mp4", np.zeros((2, 64, 64, 3), np.float32), 12)
    with pytest.raises(ValueError, match="unknown codec"):
        write_video(tmp_path / "clip.mp4", odd, 12, codec="hevc")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    # VP9 takes odd sizes, and the size read back is the size written
    decoded, _, _ = read_pyav(write_video(tmp_path / "odd.webm", odd, 12, codec="vp9"))
    assert decoded.shape == odd.shape


# --------------------------------------------------------------------------------------------------
# Clips: geometry, and the time-reversed pairs measured on the pixels
# --------------------------------------------------------------------------------------------------
def test_plans_vary_and_stay_in_range():
    seen_fps, seen_sizes = set(), set()
    for seed in range(24):
        for label in range(len(CLASSES)):
            spec = plan_clip(label, np.random.default_rng(seed))
            H, W, _ = spec.background.shape
            seen_fps.add(spec.fps)
            seen_sizes.add((H, W))
            assert DURATION_RANGE[0] - 0.1 <= spec.num_frames / spec.fps <= DURATION_RANGE[1] + 0.1
            # Centres stay in the frame; rotators stay whole (large movers and growers may leave it in part).
            assert (spec.center >= 0).all() and (spec.center[:, 0] <= W).all() and (spec.center[:, 1] <= H).all()
            if CLASSES[label].startswith("rotate"):
                reach = 1.15 * spec.radius  # the farthest any shape reaches from its centre
                assert (spec.center[:, 0] - reach >= 0).all() and (spec.center[:, 0] + reach <= W).all()
                assert (spec.center[:, 1] - reach >= 0).all() and (spec.center[:, 1] + reach <= H).all()
            # Figure and ground differ in brightness: the actor is dark, the background light.
            assert spec.color.max() < 90 and spec.color2.max() < 90
            assert spec.background.mean() > 140
    assert seen_fps == set(FPS_CHOICES) and seen_sizes == set(SIZE_CHOICES)


def track(frames: np.ndarray, spec) -> dict[str, np.ndarray]:
    """Per frame, from the pixels: the shape's centroid x and y, area, and marker angle (radians,
    increasing = clockwise on screen). The shape is wherever a frame differs from the static
    background; the marker is the part of it close to the marker colour."""
    diff = np.abs(frames.astype(np.int16) - spec.background.astype(np.int16)).sum(-1)  # [T, H, W]
    shape = diff > 40
    marker = shape & (np.abs(frames.astype(np.int16) - spec.marker_color.astype(np.int16)).sum(-1) < 60)
    assert shape.any((1, 2)).all() and marker.any((1, 2)).all()
    ys, xs = np.arange(frames.shape[1])[:, None], np.arange(frames.shape[2])[None, :]

    def centroid(m):  # [T, H, W] bool -> ([T], [T])
        n = m.sum((1, 2))
        return (m * xs).sum((1, 2)) / n, (m * ys).sum((1, 2)) / n

    x, y = centroid(shape)
    mx, my = centroid(marker)
    return {"x": x, "y": y, "area": shape.sum((1, 2)).astype(float),
            "angle": np.unwrap(np.arctan2(my - y, mx - x))}


@pytest.mark.parametrize("forward, backward", PAIRS)
def test_pairs_are_time_reversals_with_visible_motion(forward, backward):
    for seed in range(4):
        frames, fps = render_clip(CLASSES.index(forward), np.random.default_rng(seed))
        spec = plan_clip(CLASSES.index(backward), np.random.default_rng(seed))
        back = draw_clip(spec)
        # The same frames in the opposite order: no single frame (or bag of frames) tells them apart.
        assert spec.fps == fps and np.array_equal(back, frames[::-1])

        H, W = frames.shape[1:3]
        step = 4  # the training sampler's stride; single frames move less than a pixel of area noise
        two_s = int(2 * fps) // step  # samples spanning (just under) 2 seconds
        fw, bw = track(frames[::step], spec), track(back[::step], spec)
        name = {"move_right": "x", "move_down": "y", "grow": "area", "rotate_clockwise": "angle"}[forward]
        assert (np.diff(fw[name]) > 0).all(), f"{forward} seed {seed}: {fw[name]}"
        assert (np.diff(bw[name]) < 0).all(), f"{backward} seed {seed}: {bw[name]}"
        change = fw[name][two_s] - fw[name][0]
        if name in ("x", "y"):  # moves >= 25% of the frame along its axis in 2 s; the other axis stays
            assert change >= 0.25 * (W if name == "x" else H)
            other = fw["y" if name == "x" else "x"]
            # Stays, up to the centroid shift of a shape partly out of the frame (the visible part).
            assert other.max() - other.min() < 0.02 * (H if name == "x" else W)
        elif name == "area":  # linear size >= 1.6x in 2 s
            assert math.sqrt(fw["area"][two_s] / fw["area"][0]) >= 1.6
        else:  # >= 90 degrees in 2 s
            assert change >= math.pi / 2


def test_render_clip_is_deterministic():
    a, fps_a = render_clip(6, np.random.default_rng(7))
    b, fps_b = render_clip(6, np.random.default_rng(7))
    c, _ = render_clip(6, np.random.default_rng(8))
    assert a.dtype == np.uint8 and a.ndim == 4 and a.shape[-1] == 3
    assert fps_a == fps_b and np.array_equal(a, b) and not np.array_equal(a[0], c[0][: len(a[0])])
    with pytest.raises(ValueError, match="class index 8"):
        render_clip(8, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------------
# The dataset on disk
# --------------------------------------------------------------------------------------------------
NUM_TRAIN, NUM_VAL = 16, 8


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Seed 0 written by 1 and by 2 workers, and the first video of seed 1."""
    root = tmp_path_factory.mktemp("synthetic")
    summaries = {name: make_action_dataset(root / name, n_train, n_val, seed=seed, workers=workers, progress=False)
                 for name, n_train, n_val, seed, workers in [("one", NUM_TRAIN, NUM_VAL, 0, 1),
                                                             ("two", NUM_TRAIN, NUM_VAL, 0, 2),
                                                             ("seed1", 1, 0, 1, 1)]}
    return root, summaries


def read_list(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        assert re.fullmatch(r"(train|val)/[a-z_]+/\d{6}\.mp4 \d+", line), line
        rel, label = line.split(" ")
        rows.append((rel, int(label)))
    return rows


def test_list_files(datasets):
    root, summaries = datasets
    out = root / "one"
    assert summaries["one"]["written"] == NUM_TRAIN + NUM_VAL and summaries["one"]["bytes"] > 0
    assert out.joinpath("classes.txt").read_text().splitlines() == list(CLASSES)
    for split, n in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        rows = read_list(out / f"{split}.csv")
        assert len(rows) == n
        for rel, label in rows:
            assert 0 <= label < len(CLASSES) and rel.split("/")[:2] == [split, CLASSES[label]]
            assert (out / rel).is_file()  # relative to the list file's folder
        counts = np.bincount([label for _, label in rows], minlength=len(CLASSES))
        assert counts.max() - counts.min() <= 1  # round-robin: balanced


def test_dataset_videos_decode_with_the_planned_geometry(datasets):
    root, _ = datasets
    rel, label = read_list(root / "one" / "val.csv")[3]
    frames, rate, keys = read_pyav(root / "one" / rel)
    assert rate in FPS_CHOICES and tuple(frames.shape[1:3]) in SIZE_CHOICES
    assert DURATION_RANGE[0] - 0.1 <= len(frames) / rate <= DURATION_RANGE[1] + 0.1
    assert np.diff(np.flatnonzero(keys)).max() <= rate  # a keyframe at least every second


def test_same_seed_same_bytes_regardless_of_workers(datasets):
    root, _ = datasets
    one, two = root / "one", root / "two"
    for name in ("train.csv", "val.csv", "classes.txt"):
        assert one.joinpath(name).read_bytes() == two.joinpath(name).read_bytes()
    videos = sorted(p.relative_to(one) for p in one.rglob("*.mp4"))
    assert len(videos) == NUM_TRAIN + NUM_VAL
    assert all(one.joinpath(v).read_bytes() == two.joinpath(v).read_bytes() for v in videos)


def test_other_seed_other_videos(datasets):
    root, _ = datasets
    rel = read_list(root / "one" / "train.csv")[0][0]  # same name in both: names depend on the index only
    a, b = read_pyav(root / "one" / rel)[0], read_pyav(root / "seed1" / rel)[0]
    assert a.shape != b.shape or np.abs(a[0].astype(int) - b[0]).mean() > 5


def test_resume_writes_nothing_new_and_refills_gaps(datasets):
    root, _ = datasets
    out = root / "one"
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    again = make_action_dataset(out, NUM_TRAIN, NUM_VAL, seed=0, workers=1, progress=False)
    assert again["written"] == 0 and again["skipped"] == NUM_TRAIN + NUM_VAL
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == mtimes

    victim = out / read_list(out / "val.csv")[5][0]
    before = victim.read_bytes()
    victim.unlink()
    assert make_action_dataset(out, NUM_TRAIN, NUM_VAL, seed=0, workers=1, progress=False)["written"] == 1
    assert victim.read_bytes() == before

    with pytest.raises(ValueError, match="seed"):  # never mixes two datasets in one folder
        make_action_dataset(out, NUM_TRAIN, NUM_VAL, seed=3, workers=1, progress=False)


def test_cli_and_dataset_size_does_not_change_videos(datasets, tmp_path):
    root, _ = datasets
    out = tmp_path / "cli"
    cmd = [sys.executable, str(REPO / "tools" / "make_synthetic.py"), "--out", str(out), "--train", "8",
           "--val", "0", "--seed", "0", "--workers", "1", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"written": 8' in proc.stdout
    assert (out / "val.csv").read_text() == ""
    # The first 8 training videos of a 16-video dataset with the same seed: the same bytes.
    for rel, _ in read_list(out / "train.csv"):
        assert (out / rel).read_bytes() == (root / "one" / rel).read_bytes()


# --------------------------------------------------------------------------------------------------
# The other class sets (paths, dynamics): for checking a recipe on actions it was not tuned on
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("class_set", ["paths", "dynamics"])
def test_other_class_sets_are_time_reversed_pairs_that_stay_in_the_frame(class_set):
    names = CLASS_SETS[class_set]
    assert len(names) % 2 == 0 and not set(names) & set(CLASSES)
    for seed in range(3):
        for forward in range(0, len(names), 2):
            frames, fps = render_clip(forward, np.random.default_rng(seed), class_set)
            spec = plan_clip(forward + 1, np.random.default_rng(seed), class_set)
            assert spec.fps == fps and np.array_equal(draw_clip(spec), frames[::-1]), names[forward]
            H, W = frames.shape[1:3]
            assert (spec.center >= 0).all() and (spec.center[:, 0] <= W).all() and (spec.center[:, 1] <= H).all()
    with pytest.raises(ValueError, match="class index 6"):
        plan_clip(6, np.random.default_rng(0), "paths")
    with pytest.raises(ValueError, match="unknown synthetic class set"):
        plan_clip(0, np.random.default_rng(0), "nosuch")


def test_path_classes_move_as_named():
    for seed in range(3):
        rng = lambda: np.random.default_rng(seed)  # noqa: E731
        # diagonals: down-right increases x and y; down-left decreases x and increases y
        for index, sx in ((0, 1), (2, -1)):
            c = plan_clip(index, rng(), "paths").center
            assert np.sign(c[-1, 0] - c[0, 0]) == sx and c[-1, 1] > c[0, 1]
        # an orbit turns clockwise on screen (y down): the angle around its centre increases by ~3/4 turn
        c = plan_clip(PATH_CLASSES.index("orbit_clockwise"), rng(), "paths").center
        mid = (c.max(0) + c.min(0)) / 2
        turn = np.unwrap(np.arctan2(c[:, 1] - mid[1], c[:, 0] - mid[0]))
        assert (np.diff(turn) > 0).all() and 4.2 < turn[-1] - turn[0] < 5.1


def test_dynamics_classes_change_speed_as_named():
    for seed in range(3):
        for name, axis, faster_late in (("speed_up_right", 0, True), ("slow_down_right", 0, False),
                                        ("speed_up_down", 1, True)):
            c = plan_clip(DYNAMICS_CLASSES.index(name), np.random.default_rng(seed), "dynamics").center[:, axis]
            speed = np.diff(c)
            assert (speed > 0).all()
            half = len(speed) // 2
            assert (speed[half:].mean() > 2 * speed[:half].mean()) == faster_late, name
            assert (speed[:half].mean() > 2 * speed[half:].mean()) == (not faster_late), name


def test_a_class_set_is_recorded_and_never_mixed(tmp_path):
    out = tmp_path / "paths"
    make_action_dataset(out, 6, 0, seed=0, workers=1, progress=False, classes="paths")
    assert out.joinpath("classes.txt").read_text().splitlines() == list(PATH_CLASSES)
    rows = read_list(out / "train.csv")
    assert [label for _, label in rows] == list(range(6)) and rows[4][0] == "train/orbit_clockwise/000004.mp4"
    assert json.loads((out / "synthetic.json").read_text())["classes"] == "paths"
    with pytest.raises(ValueError, match="holds a synthetic dataset"):
        make_action_dataset(out, 6, 0, seed=0, workers=1, progress=False)  # the default set: another dataset
