"""AVA keyframe pictures (hiera_video/tasks/ava/viz.py): boxes in the right colours at the right pixels, labels
as ink inside their blocks, frames read back; and tools/visualize_ava.py end to end on a tiny hand-made AVA
layout (JPEG keyframes, label map, detections and ground truth)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import load_tool
from hiera_video.tasks.ava.viz import DET_COLOR, GT_COLOR, annotate_keyframe, group_detections, read_rgb

GREY = 128


def painted(img: np.ndarray, color) -> np.ndarray:
    return (img == np.array(color, np.uint8)).all(-1)


def changed(img: np.ndarray) -> np.ndarray:
    return (img != GREY).any(-1)


def border(H: int, W: int, x1: int, y1: int, x2: int, y2: int, t: int) -> np.ndarray:
    """The pixels of a rectangle outline with inclusive corners, `t` pixels thick inwards."""
    mask = np.zeros((H, W), bool)
    mask[y1:y2 + 1, x1:x2 + 1] = True
    mask[y1 + t:y2 + 1 - t, x1 + t:x2 + 1 - t] = False
    return mask


def frame(H: int = 80, W: int = 100) -> np.ndarray:
    return np.full((H, W, 3), GREY, np.uint8)


def block(img: np.ndarray, rows: slice, box_mask: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """Bounding box (x1, y1, x2, y2) of the changed pixels within `rows`, outside `box_mask`."""
    mask = changed(img)
    if box_mask is not None:
        mask &= ~box_mask
    ys, xs = np.nonzero(mask[rows])
    start = rows.start or 0
    return xs.min(), ys.min() + start, xs.max(), ys.max() + start


def ink(img: np.ndarray) -> np.ndarray:
    """Text pixels: black antialiased onto a coloured block, so dark in every channel."""
    return (img.astype(int).max(-1) < 100)


# --------------------------------------------------------------------------------------------- boxes

BOX = (0.3, 0.5, 0.7, 0.9)  # in a 100 x 80 frame: x 30..69, y 40..71


def test_an_unlabelled_detection_is_a_thin_green_outline_and_nothing_else():
    img = annotate_keyframe(frame(), [(BOX, [])], scale=1)
    assert img.shape == (80, 100, 3) and img.dtype == np.uint8
    expected = border(80, 100, 30, 40, 69, 71, 1)
    assert (painted(img, DET_COLOR) == expected).all()
    assert (img[~expected] == GREY).all()  # no label, the inside untouched


@pytest.mark.parametrize("scale, thickness", [(1, 2), (2, 2), (3, 3)])
def test_labelled_detections_are_thicker_and_scaled(scale, thickness):
    img = annotate_keyframe(frame(), [(BOX, [(1, 0.9)])], scale=scale)
    H, W = 80 * scale, 100 * scale
    assert img.shape == (H, W, 3)
    outline = border(H, W, 30 * scale, 40 * scale, 70 * scale - 1, 72 * scale - 1, thickness)
    assert painted(img, DET_COLOR)[outline].all()
    assert (img[40 * scale + thickness:72 * scale - thickness, 30 * scale + thickness:70 * scale - thickness]
            == GREY).all()  # the inside is the frame


def test_the_frame_is_enlarged_pixel_for_pixel():
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    assert np.array_equal(annotate_keyframe(rgb, [], scale=3), np.repeat(np.repeat(rgb, 3, 0), 3, 1))
    with pytest.raises(ValueError, match=r"RGB frame \[H, W, 3\], got \[6, 5\]"):
        annotate_keyframe(rgb[..., 0], [])


def test_ground_truth_is_dashed_magenta():
    img = annotate_keyframe(frame(), [], gt=[((0.0, 0.0, 1.0, 0.5), [])], scale=1)  # x 0..99, y 0..39
    top = painted(img, GT_COLOR)[0]
    assert top.tolist() == [(x // 4) % 2 == 0 for x in range(100)]  # dashes and gaps of 4 pixels
    left = painted(img, GT_COLOR)[:, 0]
    assert left[:39].tolist() == [(y // 4) % 2 == 0 for y in range(39)] and not left[40:].any()
    assert (img[1:39, 1:99] == GREY).all()


def test_boxes_leaving_the_frame_are_clipped():
    img = annotate_keyframe(frame(), [((0.5, 0.5, 1.0, 1.0), [])], scale=1)  # to the bottom-right corner
    expected = border(80, 100, 50, 40, 99, 79, 1)
    assert (painted(img, DET_COLOR) == expected).all()


# -------------------------------------------------------------------------------------------- labels

def test_a_detection_label_is_ink_on_a_green_block_above_the_box():
    img = annotate_keyframe(frame(), [(BOX, [(1, 0.93)])], names={1: "walk"}, scale=1)
    outline = border(80, 100, 30, 40, 69, 71, 2)
    x1, y1, x2, y2 = block(img, slice(0, 40))
    assert (x1, y2) == (30, 39) and 0 < y1 < 30 and x2 > x1 + 20  # sits on the box's top-left corner
    region = img[y1:y2 + 1, x1:x2 + 1]
    text = ink(region)
    assert text.sum() > 30  # "0.93 walk" is there as dark pixels
    assert (painted(region, DET_COLOR) | ~(region == GREY).all(-1)).all()  # the block is filled, no frame
    assert not text[[0, -1]].any() and not text[:, [0, -1]].any()  # ink stays inside the padding
    outside = ~outline
    outside[y1:y2 + 1, x1:x2 + 1] = False
    assert (img[outside] == GREY).all()  # nothing drawn anywhere else


def test_label_blocks_grow_with_the_text_and_the_number_of_actions():
    def size(actions, names, top=3):
        img = annotate_keyframe(frame(), [(BOX, actions)], names=names, top=top, scale=1)
        x1, y1, x2, y2 = block(img, slice(0, 40))
        return x2 - x1 + 1, y2 - y1 + 1

    short, longer = size([(1, 0.9)], {1: "sit"}), size([(1, 0.9)], {1: "talk to (e.g., self)"})
    assert longer[0] > short[0] + 20 and longer[1] == short[1]
    two, capped = size([(1, 0.9), (2, 0.5)], {1: "sit", 2: "sit"}), size([(1, 0.9), (2, 0.5)], {1: "sit"}, top=1)
    assert two[1] > 1.6 * short[1] and capped == short
    assert size([(7, 0.9)], {1: "sit"})[0] > short[0] - 10  # an id without a name: "#7" still written


def test_labels_stay_in_the_frame():
    # A box near the top (y from 8): no room above, so the block goes just inside its top edge.
    img = annotate_keyframe(frame(), [((0.1, 0.1, 0.5, 0.6), [(1, 0.9)])], names={1: "walk"}, scale=1)
    assert (img[:8] == GREY).all() and ink(img[8:30, 10:60]).sum() > 30
    assert block(img, slice(0, 40), border(80, 100, 10, 8, 49, 47, 2))[1] == 8  # the block's top: the box's
    # A box at the right border: the block shifts left to end at the border.
    img = annotate_keyframe(frame(), [((0.9, 0.5, 1.0, 0.9), [(1, 0.9)])], names={1: "walk"}, scale=1)
    x1, _, x2, _ = block(img, slice(0, 40))
    assert x2 == 99 and x1 < 90 and ink(img[:40]).sum() > 30


def test_ground_truth_labels_go_below_in_magenta_and_no_box_crosses_a_label():
    gt_box = (0.2, 0.1, 0.8, 0.4)  # y 8..31; its label block goes below, from y 32
    img = annotate_keyframe(frame(), [(BOX, [(1, 0.93)])], gt=[(gt_box, [1])], names={1: "walk"}, scale=1)
    below = img[32:50, 20:60]
    assert painted(below, GT_COLOR).sum() > 100 and ink(below).sum() > 20
    # The detection's label block (above y 40) and the ground truth's overlap; labels are drawn last, so
    # the later block covers the other, and no box outline runs through either block.
    x1, y1, x2, y2 = block(img, slice(0, 40), border(80, 100, 20, 8, 79, 31, 1))
    assert ink(img[y1:y2 + 1, x1:x2 + 1]).sum() > 20


def test_group_detections():
    box_a, box_b = (0.1, 0.1, 0.5, 0.9), (0.6, 0.2, 0.9, 0.8)
    rows = [("v", 902, box_a, 1, 0.3), ("v", 902, box_a, 2, 0.9), ("v", 902, box_b, 1, 0.05),
            ("v", 903, box_a, 3, 0.5), ("v", 902, box_a, 3, 0.1)]
    people = group_detections(rows, min_score=0.2)
    assert people[("v", 902)] == [(box_a, [(2, 0.9), (1, 0.3)]), (box_b, [])]
    assert people[("v", 903)] == [(box_a, [(3, 0.5)])]


# ------------------------------------------------------------------------------------------- frames

def test_read_rgb_reads_jpeg_and_png_frames(tmp_path):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (200, 40, 10)
    Image.fromarray(rgb).save(tmp_path / "f.png")
    assert np.array_equal(read_rgb(tmp_path / "f.png"), rgb)
    Image.fromarray(rgb).convert("L").save(tmp_path / "grey.png")  # grey files come back as RGB
    assert read_rgb(tmp_path / "grey.png").shape == (16, 24, 3)
    write_jpeg(tmp_path / "f.jpg", rgb)
    back = read_rgb(tmp_path / "f.jpg")
    assert back.shape == (16, 24, 3) and np.abs(back.astype(int) - rgb).max() < 40  # lossy
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"bad\.jpg: cannot decode the image"):
        read_rgb(tmp_path / "bad.jpg")
    with pytest.raises(FileNotFoundError, match="keyframe file not found: .*missing.jpg"):
        read_rgb(tmp_path / "missing.jpg")


# ------------------------------------------------------------------------------------------ the tool

W, H = 64, 48


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="JPEG", quality=95)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        return np.array(image)


def make_layout(tmp: Path) -> dict:
    grey = np.full((H, W, 3), 100, np.uint8)
    write_jpeg(tmp / "frames" / "vidA" / "vidA_000061.jpg", grey)  # sec 902 -> index 60 -> file 61
    write_jpeg(tmp / "frames" / "vidB" / "vidB_000001.jpg", grey)  # sec 900 -> the first file
    (tmp / "labels.pbtxt").write_text('item {\n  name: "walk"\n  id: 1\n}\nitem {\n  name: "talk to (e.g., '
                                      'self)"\n  id: 2\n}\n')
    (tmp / "det.csv").write_text("vidA,0902,0.250,0.250,0.750,0.750,1,0.930\n"
                                 "vidA,0902,0.250,0.250,0.750,0.750,2,0.410\n"
                                 "vidA,0902,0.050,0.100,0.200,0.900,1,0.100\n"
                                 "vidB,0900,0.500,0.500,1.000,1.000,2,0.800\n")
    (tmp / "gt.csv").write_text("vidA,0902,0.300,0.200,0.700,0.800,1,0\nvidA,0902,0.300,0.200,0.700,0.800,2,0\n")
    return {"frames": tmp / "frames", "det": tmp / "det.csv", "map": tmp / "labels.pbtxt", "gt": tmp / "gt.csv"}


def args(f: dict, out: Path, *extra: str) -> list[str]:
    return ["--frames", str(f["frames"]), "--detections", str(f["det"]), "--labelmap", str(f["map"]),
            "--out", str(out), *extra]


def test_tool_writes_one_png_per_keyframe(tmp_path, capsys):
    f, tool = make_layout(tmp_path), load_tool("visualize_ava")
    out = tmp_path / "vis"
    assert tool.main(args(f, out, "--gt", str(f["gt"]), "--scale", "4")) == 0
    assert "wrote 2 images" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["vidA_0902.png", "vidB_0900.png"]
    img = read_png(out / "vidA_0902.png")
    assert img.shape == (4 * H, 4 * W, 3)
    det, gt = painted(img, DET_COLOR), painted(img, GT_COLOR)
    # Detection (0.25..0.75) at 256 x 192: pixels x 64..191, y 48..143, 4 pixels thick; its two-line label
    # ("0.93 walk", "0.41 talk to (e.g., self)") above it, from its left edge.
    assert det[48:144, 64:68].all() and det[140:144, 64:192].all() and det[48:144, 188:192].all()
    assert not det[60:140, 68:188].any()  # the inside is the frame (and the ground truth's outline)
    assert det[19:173, 13].all() and not det[20:172, 14].any()  # below --min-score: thin, x 13..51, y 19..172
    ys, xs = np.nonzero(det[:48, 60:])  # (left of x 60: the thin box of the detection below --min-score)
    x1, y1, x2, y2 = xs.min() + 60, ys.min(), xs.max() + 60, ys.max()
    assert (x1, y1, y2) == (64, 16, 47) and x2 > 150 and ink(img[y1:y2 + 1, x1:x2 + 1]).sum() > 100
    # Ground truth (0.3, 0.2, 0.7, 0.8): dashed x 77..178, y 38..153, labelled below from y 154.
    assert gt[100:144, 77].any() and not gt[100:144, 77].all() and gt[153, 77:179].any()
    assert painted(img[154:190, 77:180], GT_COLOR).sum() > 500 and ink(img[154:190, 77:180]).sum() > 50
    grey = img[100, 100].astype(int)
    assert (abs(grey - 100) <= 3).all()  # the frame itself, enlarged
    b = read_png(out / "vidB_0900.png")
    assert b.shape == (4 * H, 4 * W, 3) and painted(b, DET_COLOR)[191, 128:256].all()  # box to the border

    assert tool.main(args(f, tmp_path / "one", "--max-keyframes", "1", "--scale", "1")) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["vidA_0902.png"]
    assert read_png(tmp_path / "one" / "vidA_0902.png").shape == (H, W, 3)


def test_tool_errors_name_the_file(tmp_path, capsys):
    f, tool = make_layout(tmp_path), load_tool("visualize_ava")
    (f["frames"] / "vidB" / "vidB_000001.jpg").unlink()
    assert tool.main(args(f, tmp_path / "vis")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: keyframe file not found:") and "vidB_000001.jpg" in err
    assert not (tmp_path / "vis").exists()  # nothing written before the inputs are known good

    bad = tmp_path / "bad.csv"
    bad.write_text("vidA,0902,0.25,0.25,0.75,0.75,1\n")
    f["det"] = bad
    assert tool.main(args(f, tmp_path / "vis")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:1: expected 8 columns") and err.count("\n") == 1

    (f["frames"] / "vidA" / "vidA_000061.jpg").write_bytes(b"not a jpeg")
    f["det"] = tmp_path / "det.csv"
    assert tool.main(args(f, tmp_path / "vis", "--max-keyframes", "1")) == 2
    assert "vidA_000061.jpg" in capsys.readouterr().err
    assert tool.main(args(f, tmp_path / "vis", "--top", "0")) == 2
