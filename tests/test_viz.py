"""Pictures and run logging: PNG writing (hiera_video/viz.py), the confusion matrix with and without
matplotlib, the learning curves (hiera_video/plots.py), and the tracker settings of a run
(train.log_with, the hyperparameters and epoch figures the trackers get)."""

import logging
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from hiera_video.config import ConfigError, TrainConfig
from hiera_video.viz import confusion_png, row_normalised, write_png


def read_png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.array(image)


@pytest.fixture
def no_matplotlib(monkeypatch):
    """A Python without matplotlib: `import matplotlib` (and any submodule) raises ImportError."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)


# --------------------------------------------------------------------------------------------- PNG files

def test_write_png_round_trips_rgb_and_grey(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 11, 3), dtype=np.uint8)
    write_png(tmp_path / "sub" / "rgb.png", rgb)  # the folder is made
    assert np.array_equal(read_png(tmp_path / "sub" / "rgb.png"), rgb)
    grey = np.arange(6 * 5, dtype=np.uint8).reshape(6, 5) * 8
    write_png(tmp_path / "grey.png", grey)
    assert np.array_equal(read_png(tmp_path / "grey.png"), grey)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.png", "sub"]  # no temporary left
    for bad in (rgb.astype(np.float32), rgb[..., :2], rgb[None]):
        with pytest.raises(ValueError, match="write_png wants uint8"):
            write_png(tmp_path / "bad.png", bad)


def test_write_png_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    old = np.full((4, 4, 3), 9, np.uint8)
    write_png(path, old)

    def breaks(self, fp, format=None, **kw):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("no space left")

    monkeypatch.setattr(Image.Image, "save", breaks)
    with pytest.raises(OSError, match="no space left"):
        write_png(path, np.zeros((4, 4, 3), np.uint8))
    monkeypatch.undo()
    assert np.array_equal(read_png(path), old)  # the old picture, whole
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


# -------------------------------------------------------------------------------------- confusion matrix

COUNTS = np.array([[3, 1, 0], [0, 0, 0], [0, 2, 2]])  # class 1 has no videos
NAMES = ["walk", "run", "talk to (e.g., self)"]


def test_row_normalised_shares():
    rows = row_normalised(COUNTS)
    assert np.allclose(rows, [[0.75, 0.25, 0], [0, 0, 0], [0, 0.5, 0.5]])


def test_confusion_figure_has_class_names_colour_bar_and_row_shares(tmp_path):
    pytest.importorskip("matplotlib")
    from hiera_video.viz import confusion_figure

    fig = confusion_figure(row_normalised(COUNTS), NAMES)
    ax, bar = fig.axes  # the matrix and its colour bar
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert np.allclose(np.asarray(ax.images[0].get_array()), row_normalised(COUNTS))
    assert ax.images[0].get_clim() == (0.0, 1.0) and ax.get_xlabel() == "predicted class"
    assert bar.get_ylabel().startswith("share")

    many = confusion_figure(row_normalised(np.eye(41)), [f"class{i}" for i in range(41)])
    assert not any(t.get_text().startswith("class") for t in many.axes[0].get_xticklabels())

    confusion_png(COUNTS, tmp_path / "confusion.png", names=NAMES)
    image = read_png(tmp_path / "confusion.png")
    assert image.shape[0] > 300 and image.shape[1] > 300  # a figure, not 3 x 3 squares


def test_confusion_png_without_matplotlib_is_a_plain_heatmap(tmp_path, no_matplotlib, caplog):
    with caplog.at_level(logging.INFO, logger="hiera_video"):
        confusion_png(COUNTS, tmp_path / "confusion.png", names=NAMES, max_side=30)
    image = read_png(tmp_path / "confusion.png")
    assert image.shape == (30, 30, 3)  # 3 classes, squares of 10 pixels
    assert (image[:10, :10] == np.round(255 + (np.array([8, 48, 107]) - 255) * 0.75)).all()  # 3 of 4
    assert (image[10:20] == 255).all()  # a class without videos: white
    assert (image[20:, 10:20] == image[20:, 20:]).all() and (image[25, 25] < 255).any()
    said = [r for r in caplog.records if r.name == "hiera_video"]
    assert len(said) == 1 and said[0].levelname == "INFO" and "matplotlib is not installed" in said[0].getMessage()


def test_confusion_png_checks_its_input(tmp_path):
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        confusion_png(COUNTS, tmp_path / "c.png", names=NAMES[:2])
    with pytest.raises(ValueError, match=r"square \[C, C\] matrix"):
        confusion_png(COUNTS[:2], tmp_path / "c.png")


def test_evaluation_reports_give_the_class_names_to_the_confusion_matrix(tmp_path, monkeypatch):
    from hiera_video.data.lists import Entry
    from hiera_video.engine import evaluate
    from hiera_video.engine.evaluate import write_reports
    seen = {}
    monkeypatch.setattr(evaluate, "confusion_png",
                        lambda matrix, path, names=None: seen.update(matrix=matrix, path=path, names=names))
    entries = [Entry("a.mp4", 0, 1), Entry("b.mp4", 2, 2)]
    scores = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.7, 0.2]])
    write_reports(tmp_path, entries, NAMES, torch.tensor([0, 1]), scores, {}, 1, "prob")
    assert seen["names"] == NAMES and seen["path"] == tmp_path / "confusion.png"
    assert seen["matrix"].tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


# ------------------------------------------------------------------------------------------ learning curves

def classify_rows(n=3):
    return [{"epoch": e, "step": 4 * e, "lr": 1e-3 / e, "train_loss": 2.0 / e, "val_top1": 0.2 * e,
             "val_top5": 0.3 * e, "clips_per_s": 9.0, "weights_in_sync": True} for e in range(1, n + 1)]


def lines_of(ax) -> dict:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def test_curves_of_a_classification_run():
    pytest.importorskip("matplotlib")
    from hiera_video.plots import curves_figure
    loss, lr, val = curves_figure(classify_rows()).axes
    assert [ax.get_title() for ax in (loss, lr, val)] == ["loss", "learning rate", "validation"]
    assert lines_of(loss) == {"train": ([1, 2, 3], [2.0, 1.0, 2 / 3])}  # no validation loss to show
    assert lines_of(lr)["lr"][1] == pytest.approx([1e-3, 5e-4, 1e-3 / 3])
    top = lines_of(val)
    assert top["top-1"][1] == pytest.approx([20, 40, 60]) and top["top-5"][1] == pytest.approx([30, 60, 90])


def test_curves_of_mae_and_ava_runs():
    pytest.importorskip("matplotlib")
    from hiera_video.plots import curves_figure
    mae = [{"epoch": e, "lr": 1e-4, "train_loss": 1.0 / e, "val_loss": 1.5 / e, "val_videos": 5} for e in (1, 2)]
    axes = curves_figure(mae).axes
    assert [ax.get_title() for ax in axes] == ["loss", "learning rate"]  # no validation panel for MAE
    assert lines_of(axes[0])["validation"][1] == pytest.approx([1.5, 0.75])
    ava = [{"epoch": 1, "lr": 1e-4, "train_loss": 0.5, "val_map": 0.125}]  # one epoch: still drawn
    axes = curves_figure(ava).axes
    assert axes[-1].get_title() == "validation" and lines_of(axes[-1]) == {"frame-mAP": ([1], [12.5])}
    gaps = [{"epoch": 1, "lr": 1e-4, "train_loss": 0.5, "val_loss": float("nan")}]  # no val videos read
    assert set(lines_of(curves_figure(gaps).axes[0])) == {"train"}
    with pytest.raises(ValueError, match="metrics.jsonl is empty"):
        curves_figure([])


def test_write_curves_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from hiera_video.plots import write_curves
    write_curves(classify_rows(2), tmp_path / "curves.png")
    image = read_png(tmp_path / "curves.png")
    assert image.shape[1] > 2 * image.shape[0]  # three panels side by side
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_matplotlib_missing_says_what_to_install(no_matplotlib):
    from hiera_video.plots import matplotlib_missing
    assert "pip install 'hiera-video[viz]'" in matplotlib_missing()


def test_matplotlib_present_is_no_reason():
    pytest.importorskip("matplotlib")
    from hiera_video.plots import matplotlib_missing
    assert matplotlib_missing() is None


# ------------------------------------------------------------------------------------------------ trackers

def test_log_with_accepts_trackers_and_refuses_others_naming_the_key():
    for ok in ("auto", "none", None, "all", "wandb", ["tensorboard", "mlflow"], []):
        TrainConfig(log_with=ok)
    with pytest.raises(ConfigError, match=r"train.log_with: unknown tracker 'tensorbord'; use one of "
                                          r"tensorboard, wandb, mlflow, comet_ml, aim, clearml, dvclive"):
        TrainConfig(log_with="tensorbord")
    with pytest.raises(ConfigError, match="train.log_with: unknown tracker 'neptune'"):
        TrainConfig(log_with=["wandb", "neptune"])
    with pytest.raises(ConfigError, match="train.log_with: auto, all, none stand alone"):
        TrainConfig(log_with=["all", "wandb"])


def test_log_with_from_a_config_file_and_overrides(tmp_path):
    from hiera_video.config import load_config
    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  name: hiera_test_8x64\ndata:\n  num_frames: 8\n  crop_size: 64\n"
                    "train:\n  log_with: [wandb, mlflow]\noutput_dir: x\n")
    assert load_config(path).train.log_with == ["wandb", "mlflow"]
    assert load_config(path, ["train.log_with=none"]).train.log_with == "none"
    with pytest.raises(ConfigError, match="train.log_with: unknown tracker 'tb'"):
        load_config(path, ["train.log_with=tb"])


def test_tracker_names_resolve_auto_and_check_packages(monkeypatch):
    import accelerate.utils

    from hiera_video.engine import train as engine
    monkeypatch.setattr(engine, "_tensorboard_available", lambda: True)
    assert engine.tracker_names("auto") == ["tensorboard"]
    monkeypatch.setattr(engine, "_tensorboard_available", lambda: False)
    assert [engine.tracker_names(v) for v in ("auto", "none", None, [])] == [[], [], [], []]
    assert engine.tracker_names("all") == ["all"]
    monkeypatch.setattr(accelerate.utils, "is_mlflow_available", lambda: True)
    monkeypatch.setattr(accelerate.utils, "is_aim_available", lambda: False)
    monkeypatch.setattr(accelerate.utils, "is_dvclive_available", lambda: False)
    assert engine.tracker_names(["mlflow", "mlflow"]) == ["mlflow"]
    with pytest.raises(ConfigError, match=r"train.log_with: aim, dvclive are not installed; pip install aim dvclive"):
        engine.tracker_names(["mlflow", "aim", "dvclive"])


def test_hyperparameters_are_dotted_scalars():
    from hiera_video.config import Config
    from hiera_video.engine.train import hyperparameters
    cfg = Config.from_dict({"model": {"name": "hiera_test_8x64"}, "data": {"num_frames": 8, "crop_size": 64},
                            "train": {"log_with": ["wandb", "mlflow"]}, "output_dir": "x"})
    flat = hyperparameters(cfg)
    assert flat["model.name"] == "hiera_test_8x64" and flat["data.num_frames"] == 8 and flat["output_dir"] == "x"
    assert flat["train.log_with"] == "wandb,mlflow" and flat["data.std"] == "0.225,0.225,0.225"
    assert flat["model.pretrained"] == "null"
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())
    assert set(flat) >= {f"train.{k}" for k in ("epochs", "batch_size", "seed", "log_every")}


def test_epoch_scalars_name_validation_figures():
    from hiera_video.engine.train import epoch_scalars
    row = {"epoch": 2, "step": 8, "lr": 1e-4, "train_loss": 0.5, "val_top1": 0.4, "val_map": 0.1,
           "weights_in_sync": True, "note": "text"}
    assert epoch_scalars(row) == {"epoch/epoch": 2, "epoch/train_loss": 0.5, "val/top1": 0.4, "val/map": 0.1,
                                  "epoch/weights_in_sync": 1}
    assert not math.isnan(epoch_scalars({"val_loss": 0.25})["val/loss"])
