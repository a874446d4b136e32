"""A careless or hostile user at the command line and in Python: every mistake found by trying ends in one
line naming the culprit, before any work is done and without touching what is already there. (Found by a
review run against the installed package; each case here failed before its fix.)"""

import json

import pytest

import hiera_video
from hiera_video import cli
from hiera_video.config import ConfigError, load_config


@pytest.fixture
def ckpt(tiny_classifier):
    return str(tiny_classifier / "model.pt")


def write_eval_config(path, val_list, out) -> None:
    """A config that evaluates tiny_classifier's model on `val_list`."""
    path.write_text("model: {name: hiera_test_8x64, num_classes: 3}\n"
                    f"data: {{val_list: {val_list}, num_frames: 8, sampling_rate: 2, crop_size: 64, num_workers: 0}}\n"
                    f"output_dir: {out}\n")


def test_a_labels_file_that_does_not_exist_is_an_error_not_ignored(tiny_classifier, ckpt, capsys):
    assert cli.main(["predict", str(tiny_classifier / "0.mp4"), "--ckpt", ckpt, "--labels", "nosuch.txt"]) == 2
    assert "--labels 'nosuch.txt'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="nosuch.txt"):
        hiera_video.predict(tiny_classifier / "0.mp4", ckpt, labels="nosuch.txt")


def test_finetune_refuses_class_names_that_do_not_fit_the_model_before_training(data, tmp_path, capsys):
    (tmp_path / "four.txt").write_text("a\nb\nc\nd\n")
    rc = cli.main(["finetune", "--cfg", "synthetic_hiera_tiny", f"data.train_list={data / 'train.csv'}",
                   f"data.val_list={data / 'val.csv'}", f"data.classes={tmp_path / 'four.txt'}",
                   f"output_dir={tmp_path / 'run'}"])
    assert rc == 2 and not (tmp_path / "run").exists()
    assert "lists 4 classes but model.num_classes is 8" in capsys.readouterr().err


def test_evaluate_with_no_readable_video_exits_1_and_writes_valid_json(tiny_classifier, ckpt, tmp_path, capsys):
    (tmp_path / "bad.mp4").write_text("not a video")
    (tmp_path / "list.csv").write_text("bad.mp4 0\nmissing.mp4 1\n")
    write_eval_config(tmp_path / "cfg.yaml", tmp_path / "list.csv", tmp_path / "out")
    assert cli.main(["evaluate", "--cfg", str(tmp_path / "cfg.yaml"), "--ckpt", ckpt, "--out",
                     str(tmp_path / "eval")]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["top1"] is None and "none of the 2 videos" in err
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["top1"] is None  # null, not NaN


def test_outputs_that_cannot_be_written_are_refused_up_front(ckpt, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    for argv in (["export", "--ckpt", ckpt, "--out", str(tmp_path), "--format", "torch-export"],  # a folder
                 ["export", "--ckpt", ckpt, "--out", str(tmp_path / "no" / "m.pt2")],              # no parent
                 ["export", "--ckpt", ckpt, "--out", "", "--format", "onnx"],
                 ["save-pretrained", "--ckpt", ckpt, "--out", str(precious)],
                 ["save-pretrained", "--ckpt", ckpt, "--out", ""],
                 ["evaluate", "--cfg", "synthetic_hiera_tiny", "--ckpt", ckpt, "--out", str(precious)],
                 ["embed", "--ckpt", ckpt, "--list", "x.csv", "--out", str(precious)]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2, argv
    assert precious.read_text() == "keep me" and list(tmp_path.iterdir()) == [precious]


def test_an_os_error_is_one_line_naming_the_path(tiny_classifier, ckpt, tmp_path, capsys, monkeypatch):
    import errno
    import hiera_video.engine.evaluate as engine

    def read_only(out, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(out / "metrics.json"))
    monkeypatch.setattr(engine, "write_reports", read_only)
    write_eval_config(tmp_path / "cfg.yaml", tiny_classifier / "list.csv", tmp_path / "out")
    assert cli.main(["evaluate", "--cfg", str(tmp_path / "cfg.yaml"), "--ckpt", ckpt, "--out",
                     str(tmp_path / "ro")]) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'ro' / 'metrics.json'}: read-only file system\n" in err and "Traceback" not in err


def test_ctrl_c_in_training_says_how_to_resume(monkeypatch, data, tmp_path, capsys):
    import hiera_video.engine.train as engine

    def interrupted(cfg):
        raise KeyboardInterrupt
    monkeypatch.setattr(engine, "train", interrupted)
    rc = cli.main(["finetune", "--cfg", "synthetic_hiera_tiny", f"data.train_list={data / 'train.csv'}",
                   "data.classes=null", f"output_dir={tmp_path / 'run'}"])
    assert rc == 130 and "train.resume=true" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--k", "0"], ["--k", "-2"], ["--device", "gpu"], ["--views", "0,3"]])
def test_bad_predict_options_are_argparse_errors_before_loading(extra, tiny_classifier, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["predict", str(tiny_classifier / "0.mp4"), "--ckpt", "never-read.pt", *extra])
    assert e.value.code == 2
    assert extra[0] in capsys.readouterr().err


def test_configs_prints_shipped_files_only(capsys):
    assert cli.main(["configs", "/etc/passwd"]) == 2
    assert "neither a shipped config nor a shipped class list" in capsys.readouterr().err
    assert cli.main(["configs", "kinetics400"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "abseiling"


def test_config_mistakes_point_at_the_right_key(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'optim.lr'"):
        load_config("synthetic_hiera_tiny", ["train.lr=1e-3"])
    with pytest.raises(ConfigError, match="train is a section"):
        load_config("synthetic_hiera_tiny", ["train=3"])


@pytest.mark.parametrize("kwargs, error", [
    (dict(paths=None), TypeError), (dict(paths=3), TypeError), (dict(paths=[None]), TypeError),
    (dict(views="2,3"), ValueError), (dict(views=5), ValueError), (dict(k=1.5), ValueError),
    (dict(k=None), ValueError), (dict(device="gpu"), ValueError)])
def test_python_predict_names_a_bad_argument(kwargs, error, tiny_classifier, ckpt):
    call = {"paths": str(tiny_classifier / "0.mp4"), **kwargs}
    with pytest.raises(error, match=next(iter(kwargs))):
        hiera_video.predict(call.pop("paths"), ckpt, **call)
