"""How every command is made (one parser builder, one error handler: `cli.command`), and the commands that
turn a checkpoint into something else: `save-pretrained` (a Hugging Face folder that the rest of the
project, and `predict`, read back with its class names and clip settings) and `export` (ONNX /
torch.export files that run like the eager model)."""

import errno
import importlib
import inspect
import json

import pytest
import torch

import hiera_video
from hiera_video import cli
from hiera_video.errors import CheckpointError, ConfigError, DiskFullError


def test_one_handler_ends_every_error_in_one_line_with_its_exit_code(capsys):
    raised = {"config": ConfigError("c.yaml: optim.lr must be > 0, got 0"),
              "checkpoint": CheckpointError("checkpoint not found: x.pt"),  # in both tuples: the input's fault
              "disk": DiskFullError(errno.ENOSPC, "no space left on device writing out/m.pt"),
              "os": PermissionError(errno.EACCES, "Permission denied", "/ro/out"),
              "extra": RuntimeError("no CUDA device")}

    def arguments(p):
        p.add_argument("what")

    @cli.command("A test command.", arguments, usage_errors=(RuntimeError,),
                 interrupted=lambda args: f"run it again to continue {args.what}")
    def main(args):
        if args.what == "ctrl-c":
            raise KeyboardInterrupt
        if args.what == "clash":
            raise cli.ArgumentsError("--a and --b do not go together")
        if args.what == "ok":
            return 0
        raise raised[args.what]

    expected = {"config": (2, "error: c.yaml: optim.lr must be > 0, got 0"),
                "checkpoint": (2, "error: checkpoint not found: x.pt"),
                "disk": (1, "error: [Errno 28] no space left on device writing out/m.pt"),
                "os": (1, "error: /ro/out: permission denied"),
                "extra": (2, "error: no CUDA device"),
                "ctrl-c": (130, "interrupted; run it again to continue ctrl-c")}
    for what, (code, line) in expected.items():
        assert main([what], prog="hiera-video test") == code, what
        assert capsys.readouterr().err == line + "\n", what
    assert main(["ok"]) == 0
    with pytest.raises(SystemExit) as e:
        main(["clash"], prog="hiera-video test")
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: hiera-video test")
    assert "hiera-video test: error: --a and --b do not go together" in err
    with pytest.raises(KeyError):  # anything else is a bug: a traceback, not a one-line error
        main(["unknown"])


def test_every_command_gets_its_parser_and_error_handling_from_cli_command():
    for name, (module, _) in cli.COMMANDS.items():
        source = inspect.getsource(importlib.import_module(f"hiera_video.commands.{module}"))
        assert "ArgumentParser(" not in source and "parse_args(" not in source, name
        assert 'print(f"error: {e}' not in source and "except KeyboardInterrupt" not in source, name


def test_save_pretrained_folder_rebuilds_the_model_and_keeps_names_and_settings(tiny_classifier, tmp_path, capsys):
    folder = tmp_path / "hf"
    assert cli.main(["save-pretrained", "--ckpt", str(tiny_classifier / "model.pt"), "--out", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors"}
    original = hiera_video.create_model(pretrained=str(tiny_classifier / "model.pt")).eval()
    rebuilt = hiera_video.create_model(pretrained=str(folder)).eval()
    x = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), original(x))
    assert rebuilt.pretrained_cfg["classes"] == ["left", "right", "up"]
    assert rebuilt.pretrained_cfg["num_frames"] == 8 and rebuilt.pretrained_cfg["sampling_rate"] == 2
    capsys.readouterr()
    # The folder is a complete checkpoint for prediction: same answer as the original file, with names.
    video = str(tiny_classifier / "0.mp4")
    assert cli.main(["predict", video, "--ckpt", str(folder), "--views", "1,3", "--k", "3", "--json"]) == 0
    from_folder = json.loads(capsys.readouterr().out)
    assert from_folder == hiera_video.predict(video, str(tiny_classifier / "model.pt"), k=3, views=(1, 3))
    assert [t["class"] for t in from_folder[0]["top"]] != ["0", "1", "2"]


def test_save_pretrained_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    assert cli.main(["save-pretrained", "--ckpt", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.pt" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_export_torch_export_program_runs_like_the_model_at_another_batch(tiny_classifier, tmp_path, capsys):
    out = tmp_path / "m.pt2"
    assert cli.main(["export", "--ckpt", str(tiny_classifier / "model.pt"), "--out", str(out)]) == 0
    assert "max abs error" in capsys.readouterr().out
    program = torch.export.load(str(out)).module()
    model = hiera_video.create_model(pretrained=str(tiny_classifier / "model.pt")).eval()
    x = torch.randn(3, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(program(x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_export_onnx_runs_in_onnxruntime(tiny_classifier, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "m.onnx"
    assert cli.main(["export", "--ckpt", str(tiny_classifier / "model.pt"), "--out", str(out), "--no-dynamo"]) == 0
    assert "onnxruntime" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(1, 3, 8, 64, 64)
    model = hiera_video.create_model(pretrained=str(tiny_classifier / "model.pt")).eval()
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), atol=1e-4, rtol=1e-4)


def test_export_needs_a_known_suffix_or_format(tiny_classifier, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["export", "--ckpt", str(tiny_classifier / "model.pt"), "--out", str(tmp_path / "m.bin")])
