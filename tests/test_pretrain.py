"""MAE pretraining through the shared loop: outputs and a falling loss, exact resumption with the
random masks, the task check of the tools, and finetuning from the result with every encoder weight."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import hiera_video
from hiera_video.config import load_config
from conftest import load_tool
from test_train import ROOT, overrides

MAE_CFG = ROOT / "configs" / "synthetic_mae_hiera_tiny.yaml"


def mae_overrides(data_dir: Path, out: Path, **extra) -> list[str]:
    args = {k: v for k, v in (o.split("=", 1) for o in overrides(data_dir, out))
            if not k.startswith(("model.", "data.randaug", "data.erase"))}
    # Normalised targets as the paper's: the shipped tiny config's raw pixels suit the synthetic action set,
    # not these index-pattern videos, on which its validation loss does not fall within 10 epochs.
    args.update({"model.name": "mae_hiera_test_8x64", "model.mask_ratio": 0.75, "model.drop_path": 0.1,
                 "model.norm_pix_loss": True, "optim.lr": 2e-3, **extra})
    return [f"{k}={v}" for k, v in args.items()]


@pytest.fixture(scope="module")
def pretrained(data, tmp_path_factory):
    """A 10-epoch MAE run on the tiny set (every checkpoint kept, for the resume test)."""
    from accelerate.state import AcceleratorState, GradientState
    from hiera_video.engine.train import train
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    out = tmp_path_factory.mktemp("mae") / "run"
    train(load_config(MAE_CFG, mae_overrides(data, out, **{"train.epochs": 10, "train.keep_checkpoints": 100})))
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return out


def test_pretraining_writes_its_outputs_and_the_loss_falls(pretrained):
    rows = [json.loads(line) for line in (pretrained / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 11))
    assert all(r["val_videos"] == 5 and r["val_unreadable"] == 0 for r in rows)
    assert rows[-1]["train_loss"] < 0.95 * rows[0]["train_loss"], [r["train_loss"] for r in rows]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"], [r["val_loss"] for r in rows]
    ckpt = torch.load(pretrained / "model_last.pt", weights_only=True)
    assert ckpt["model_name"] == "mae_hiera_test_8x64" and "decoder_pred.weight" in ckpt["model"]
    assert (pretrained / "model_best.pt").exists()  # lowest validation loss


def test_resuming_mid_epoch_gives_identical_weights(pretrained, tmp_path, fresh_accelerate):
    # A copy of the run as it stood at update 10 (epoch 3, 2 of its 4 updates done), then resumed:
    # the masks and drop path come from the restored RNG, so the end must be bitwise the same.
    from hiera_video.engine.train import train
    out = tmp_path / "resumed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(pretrained / "checkpoints" / "step_00000010", out / "checkpoints" / "step_00000010")
    (out / "checkpoints" / "latest").write_text("step_00000010\n")
    lines = (pretrained / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n")
    cfg = load_config(MAE_CFG, mae_overrides(pretrained.parent.parent / "x", out, **{"train.epochs": 10}))
    cfg.data = load_config(pretrained / "config.yaml").data
    cfg.train.resume = True
    train(cfg)
    ref = torch.load(pretrained / "model_last.pt", weights_only=True)["model"]
    got = torch.load(out / "model_last.pt", weights_only=True)["model"]
    for key in ref:
        assert torch.equal(got[key], ref[key]), key


def test_finetuning_from_it_loads_every_encoder_weight(pretrained, data, tmp_path, fresh_accelerate):
    from hiera_video.engine.train import build_model
    cfg = load_config(ROOT / "configs" / "synthetic_hiera_tiny.yaml",
                      overrides(data, tmp_path / "ft", **{"model.pretrained": str(pretrained / "model_last.pt")}))
    model = build_model(cfg)
    mae = torch.load(pretrained / "model_last.pt", weights_only=True)["model"]
    loaded = [k for k in model.state_dict() if not k.startswith(("norm.", "head."))]
    assert loaded and all(torch.equal(model.state_dict()[k], mae[k]) for k in loaded)


def test_tools_refuse_a_config_of_the_other_task(tmp_path, capsys):
    from hiera_video.commands import finetune, pretrain
    assert finetune.main(["--cfg", str(MAE_CFG)]) == 2
    assert "use `hiera-video pretrain` or tools/pretrain.py" in capsys.readouterr().err
    assert pretrain.main(["--cfg", str(ROOT / "configs" / "synthetic_hiera_tiny.yaml")]) == 2
    assert "use `hiera-video finetune` or tools/finetune.py" in capsys.readouterr().err


def test_model_name_must_fit_the_task(data, tmp_path):
    from hiera_video.engine.train import build_model
    cfg = load_config(MAE_CFG, mae_overrides(data, tmp_path, **{"model.name": "hiera_test_8x64"}))
    with pytest.raises(ValueError, match="needs an mae_"):
        build_model(cfg)


def test_mae_validation_masks_do_not_depend_on_the_batch():
    from hiera_video.tasks.mae.task import mae_clip_losses
    model = hiera_video.create_model("mae_hiera_test_8x64", mask_ratio=0.75).eval()
    x = torch.randn(3, 3, 8, 64, 64)
    views = torch.tensor([[7, 0, 0], [3, 0, 0], [9, 0, 0]])
    together = mae_clip_losses(model, x, views)
    alone = torch.cat([mae_clip_losses(model, x[i:i + 1], views[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)
    assert together.shape == (3, 1)


def test_visualize_mae_draws_frames_masked_input_and_reconstruction(pretrained, data, tmp_path, capsys):
    tool = load_tool("visualize_mae")
    out = tmp_path / "mae.png"
    args = ["--ckpt", str(pretrained / "model_last.pt"), "--video", str(data / "val" / "0.mp4"), "--out", str(out)]
    assert tool.main(args + ["--scale", "1"]) == 0
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG")
    # 4 token frames of 64 px with 2-px gaps, 3 rows: width 4*64 + 3*2, height 3*64 + 2*2 (big-endian IHDR)
    assert int.from_bytes(png[16:20], "big") == 4 * 64 + 3 * 2 and int.from_bytes(png[20:24], "big") == 3 * 64 + 4
    assert "4 of 16 units kept" in capsys.readouterr().out
    clf = hiera_video.create_model("hiera_test_8x64")
    hiera_video.save_model(clf, tmp_path / "clf.pt")
    assert tool.main(["--ckpt", str(tmp_path / "clf.pt"), "--video", str(data / "val" / "0.mp4"),
                      "--out", str(tmp_path / "x.png")]) == 2
    assert "not an MAE" in capsys.readouterr().err


def test_sparsity_benchmark_counts_fewer_flops_when_masking():
    from hiera_video.benchmark import run_mae_sparsity
    rows = run_mae_sparsity("mae_hiera_test_8x64", (0.0, 0.75), batch_size=1, iters=1, seconds=0.0,
                            log=lambda _: None)
    assert [r["kept_units"] for r in rows] == [16, 4]
    assert rows[1]["encoder_gflops_per_clip"] < 0.5 * rows[0]["encoder_gflops_per_clip"]
    assert all(r["forward_clips_per_s"] > 0 and r["train_clips_per_s"] > 0 for r in rows)
