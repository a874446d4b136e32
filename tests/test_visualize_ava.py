"""Box and text drawing (hiera_video/viz_boxes.py) pixel by pixel, and tools/visualize_ava.py end to end on
a tiny hand-made AVA layout (JPEG keyframes, label map, detections and ground truth)."""

import importlib.util
import struct
import zlib
from pathlib import Path

import av
import numpy as np

from hiera_video.viz_boxes import (DET_COLOR, FONT, GT_COLOR, UNKNOWN_GLYPH, annotate_keyframe, draw_rect,
                                   draw_text, glyph, group_detections, text_size)

ROOT = Path(__file__).parents[1]
RED = (255, 0, 0)


def painted(img: np.ndarray, color=RED) -> np.ndarray:
    return (img == np.array(color, np.uint8)).all(-1)


# --------------------------------------------------------------------------------------------- drawing

def test_draw_rect_colours_exactly_the_border():
    img = np.zeros((10, 12, 3), np.uint8)
    draw_rect(img, 2, 3, 8, 7, RED, thickness=1)
    expected = np.zeros((10, 12), bool)
    expected[3, 2:9] = expected[7, 2:9] = expected[3:8, 2] = expected[3:8, 8] = True
    assert (painted(img) == expected).all()
    assert (img[~expected] == 0).all()  # nothing else touched, the inside included

    img = np.zeros((10, 12, 3), np.uint8)
    draw_rect(img, 8, 7, 2, 3, RED, thickness=2)  # corners in either order; thickness grows inwards
    expected = np.zeros((10, 12), bool)
    expected[3:8, 2:9] = True
    expected[5, 4:7] = False  # the 3 x 1 inside
    assert (painted(img) == expected).all()


def test_draw_rect_clips_at_the_border():
    img = np.zeros((10, 10, 3), np.uint8)
    draw_rect(img, -5, -5, 4, 4, RED, thickness=1)  # the top and left edges are outside
    expected = np.zeros((10, 10), bool)
    expected[4, 0:5] = expected[0:5, 4] = True
    assert (painted(img) == expected).all()
    draw_rect(img, 20, 20, 30, 30, (0, 255, 0))  # entirely outside: nothing, no error
    draw_rect(img, -3, 2, 15, 6, (0, 0, 255), thickness=1)  # wider than the image: only the long edges
    assert painted(img, (0, 0, 255)).sum() == 20 and painted(img, (0, 0, 255))[[2, 6]].all()


def test_dashed_rect_alternates():
    img = np.zeros((5, 20, 3), np.uint8)
    draw_rect(img, 0, 0, 19, 4, RED, thickness=1, dash=3)
    top = painted(img)[0]
    assert top.tolist() == [(x // 3) % 2 == 0 for x in range(20)]


def test_font_covers_the_required_characters():
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:;()/-_%'+&":
        assert c in FONT and FONT[c].shape in ((7, 5), (8, 5)), c
    assert not FONT[" "].any() and FONT["A"][0].tolist() == [0, 1, 1, 1, 0]
    assert all(FONT[c].any() for c in FONT if c != " ")
    assert not any(np.array_equal(FONT[c], FONT[c.upper()]) for c in "abcdefghijklmnopqrstuvwxyz")
    assert len({FONT[c].tobytes() for c in FONT}) == len(FONT)  # no two glyphs alike
    assert glyph("\u00e9") is UNKNOWN_GLYPH and UNKNOWN_GLYPH.any()


def test_draw_text_reproduces_the_glyph_bitmaps():
    img = np.zeros((9, 13, 3), np.uint8)
    assert draw_text(img, 0, 0, "A7", RED) == text_size("A7") == (13, 9)
    assert (painted(img)[1:8, 1:6] == FONT["A"]).all() and (painted(img)[1:8, 7:12] == FONT["7"]).all()
    assert not painted(img)[0].any() and not painted(img)[:, 6].any()  # margin and spacing stay empty

    img = np.zeros((20, 20, 3), np.uint8)
    draw_text(img, 1, 2, "g", RED, background=(0, 0, 255), scale=2)
    w, h = text_size("g", 2)
    assert (w, h) == (14, 18)
    ink = painted(img)[4:20, 3:13]  # glyph at (1 + 2, 2 + 2), 10 x 16 pixels: g's tail fills the margin
    assert (ink == np.kron(FONT["g"], np.ones((2, 2), bool))).all()
    box = np.zeros((20, 20), bool)
    box[2:2 + h, 1:1 + w] = True
    assert (painted(img, (0, 0, 255)) == box & ~painted(img)).all()  # background fills the box exactly

    img = np.zeros((9, 7, 3), np.uint8)
    draw_text(img, 0, 0, "\u00e9", RED)  # unknown: the small box
    assert (painted(img)[1:8, 1:6] == UNKNOWN_GLYPH).all()


def test_draw_text_clips_at_the_border():
    img = np.zeros((6, 8, 3), np.uint8)
    draw_text(img, -3, -2, "AB", RED, background=(0, 0, 255))
    full = np.zeros((9, 13), bool)
    full[1:8, 1:6], full[1:8, 7:12] = FONT["A"], FONT["B"]
    assert (painted(img) == full[2:8, 3:11]).all()
    draw_text(img, 100, 100, "far away", RED)  # outside: nothing, no error


def test_group_detections_and_annotate():
    box_a, box_b = (0.1, 0.1, 0.5, 0.9), (0.6, 0.2, 0.9, 0.8)
    rows = [("v", 902, box_a, 1, 0.3), ("v", 902, box_a, 2, 0.9), ("v", 902, box_b, 1, 0.05),
            ("v", 903, box_a, 3, 0.5), ("v", 902, box_a, 3, 0.1)]
    people = group_detections(rows, min_score=0.2)
    assert people[("v", 902)] == [(box_a, [(2, 0.9), (1, 0.3)]), (box_b, [])]
    assert people[("v", 903)] == [(box_a, [(3, 0.5)])]
    rgb = np.full((40, 50, 3), 128, np.uint8)
    img = annotate_keyframe(rgb, people[("v", 902)], gt=[(box_b, [1])], names={1: "walk", 2: "sit"}, top=1)
    assert img.shape == (80, 100, 3) and img.dtype == np.uint8
    assert painted(img, DET_COLOR)[60, 10] and painted(img, DET_COLOR)[60, 11]  # left edge, 2 px thick
    assert painted(img, DET_COLOR)[40, 60] and not painted(img, DET_COLOR)[40, 61]  # box_b: thin
    assert painted(img, GT_COLOR).any()


# ------------------------------------------------------------------------------------------ the tool

W, H = 64, 48


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "yuvj420p"
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None)))


def read_png(path: Path) -> np.ndarray:
    """Just enough of PNG for viz.write_png's files: 8-bit RGB, one IDAT chunk, filter 0 on every row."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    n = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = np.frombuffer(zlib.decompress(data[41:41 + n]), np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


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


def load_tool():
    spec = importlib.util.spec_from_file_location("visualize_ava_tool", ROOT / "tools" / "visualize_ava.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def args(f: dict, out: Path, *extra: str) -> list[str]:
    return ["--frames", str(f["frames"]), "--detections", str(f["det"]), "--labelmap", str(f["map"]),
            "--out", str(out), *extra]


def test_tool_writes_one_png_per_keyframe(tmp_path, capsys):
    f, tool = make_layout(tmp_path), load_tool()
    out = tmp_path / "vis"
    assert tool.main(args(f, out, "--gt", str(f["gt"]), "--scale", "2")) == 0
    assert "wrote 2 images" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["vidA_0902.png", "vidB_0900.png"]
    img = read_png(out / "vidA_0902.png")
    assert img.shape == (2 * H, 2 * W, 3)
    det = painted(img, DET_COLOR)
    # Box (0.25..0.75) at 128 x 96: pixels x 32..95, y 24..71; the left edge below the label block.
    assert det[40:72, 32].all() and det[40:72, 33].all() and det[71, 32:96].all()
    assert not det[48, 34:94].any()  # the inside is the frame
    assert painted(img, GT_COLOR)[19:77, 38:90].any()  # ground truth: x 38..89, y 19..76
    grey = img[50, 50].astype(int)
    assert (abs(grey - 100) <= 3).all()  # the frame itself, enlarged
    b = read_png(out / "vidB_0900.png")
    assert b.shape == (2 * H, 2 * W, 3) and painted(b, DET_COLOR)[95, 64:128].all()  # box to the border

    assert tool.main(args(f, tmp_path / "one", "--max-keyframes", "1", "--scale", "1")) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["vidA_0902.png"]
    assert read_png(tmp_path / "one" / "vidA_0902.png").shape == (H, W, 3)


def test_tool_errors_name_the_file(tmp_path, capsys):
    f, tool = make_layout(tmp_path), load_tool()
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
