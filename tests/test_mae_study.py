"""The small-scale MAE recipe and the study command: the two configs describe one geometry with room for
the paper's mask ratio, model.norm_pix_loss reaches the model, and `hiera-video mae-study` runs every
step through the real code on tiny data, resumes without redoing a step, and refuses to mix runs.
(The study's figures themselves come from the benchmark command, not from tests.)"""

import json

import pytest
import torch

import hiera_video
from hiera_video.config import load_config
from hiera_video.data.lists import read_list, write_list
from hiera_video.tasks.mae.study import labelled_subset


def test_recipe_configs_share_one_geometry_with_room_for_mask_ratio_0_9():
    pre, ft = load_config("synthetic_mae_recipe_pretrain"), load_config("synthetic_mae_recipe_finetune")
    assert pre.task == "mae" and ft.task == "classify"
    assert pre.model.name == "mae_" + ft.model.name  # the finetuned model is the pretrained encoder
    for key in ("num_frames", "sampling_rate", "crop_size", "target_fps", "mean", "std"):
        assert getattr(pre.data, key) == getattr(ft.data, key), key
    assert ft.model.pretrained is None  # from scratch unless model.pretrained is given
    with torch.device("meta"):
        mae = hiera_video.create_model(pre.model.name, mask_ratio=pre.model.mask_ratio,
                                       input_size=(pre.data.num_frames, pre.data.crop_size, pre.data.crop_size))
    kept = int(mae.num_mask_units * (1 - pre.model.mask_ratio))
    assert pre.model.mask_ratio == 0.9 and mae.num_mask_units >= 32 and kept >= 3
    assert pre.model.norm_pix_loss is False  # see the config's header and docs/mae_study.md


@pytest.mark.parametrize("name", ["synthetic_mae_recipe_pretrain", "synthetic_mae_hiera_tiny"])
def test_synthetic_mae_configs_keep_the_lr_that_did_not_collapse_the_deep_stages(name):
    # 1.5e-3 at 16 clips (the old tiny config) collapsed stages 3-4 to 2-3 directions; 5e-4 did not
    # (docs/mae_study.md, E6-E7). The warmup must cover some updates, not one epoch of a few.
    cfg = load_config(name)
    assert cfg.optim.lr / cfg.optim.lr_batch_size <= 5e-4 / 16
    assert cfg.optim.warmup_epochs / cfg.train.epochs >= 0.1


def test_norm_pix_loss_from_the_config_reaches_the_model(data, tmp_path):
    from hiera_video.engine.train import build_model
    base = [f"data.train_list={data / 'train.csv'}", "data.val_list=null", "model.name=mae_hiera_test_8x64",
            "data.num_frames=8", f"output_dir={tmp_path}"]
    assert build_model(load_config("synthetic_mae_recipe_pretrain", base)).norm_pix_loss is False
    assert build_model(load_config("synthetic_mae_recipe_pretrain", base + ["model.norm_pix_loss=true"])).norm_pix_loss
    assert build_model(load_config("synthetic_mae_hiera_tiny", base)).norm_pix_loss is False
    # null keeps the model's default (the paper's normalised targets)
    assert build_model(load_config("synthetic_mae_recipe_pretrain", base + ["model.norm_pix_loss=null"])).norm_pix_loss


def test_labelled_subset_takes_the_first_videos_of_each_class(tmp_path):
    write_list(tmp_path / "all.csv", [(f"v{i}.mp4", i % 3) for i in range(12)])
    assert labelled_subset(tmp_path / "all.csv", 2, tmp_path / "few.csv") == 6
    rows = [(e.path.rsplit("/", 1)[1], e.label) for e in read_list(tmp_path / "few.csv")]
    assert rows == [(f"v{i}.mp4", i % 3) for i in range(6)]  # file order kept
    with pytest.raises(ValueError, match="fewer than 5 videos"):
        labelled_subset(tmp_path / "all.csv", 5, tmp_path / "x.csv")


TINY = ["model.name={}", "data.num_frames=8", "data.sampling_rate=2", "data.num_workers=0", "train.batch_size=4",
        "train.epochs=1", "train.max_steps=2", "optim.warmup_epochs=0", "optim.lr_batch_size=4"]


def study_args(data, out, *extra):
    pre = [a.format("mae_hiera_test_8x64") for a in TINY] + ["data.num_repeats=2"]
    ft = [a.format("hiera_test_8x64") for a in TINY] + ["eval.num_temporal_clips=1", "eval.num_spatial_crops=1"]
    return ["--out", str(out), "--data", str(data), "--per-class", "2", "--seeds", "0", "--ratios", "0.75",
            "--workers", "0", *extra, "--pretrain", *pre, "--finetune", *ft]


def test_study_runs_every_step_resumes_and_refuses_mixed_runs(data, tmp_path, capsys, fresh_accelerate, monkeypatch):
    (data / "classes.txt").write_text("left\nright\n")
    from hiera_video.commands.mae_study import main
    out = tmp_path / "study"
    assert main(study_args(data, out)) == 0
    table = capsys.readouterr().out
    assert "finetuned from scratch" in table and "MAE (mask 0.9), then finetuned" in table
    results = json.loads((out / "study.json").read_text())
    steps = set(results["steps"])
    assert steps == {"probe_random_s0", "pretrain_r0.9_s0", "probe_mae_r0.9_s0", "finetune_mae_r0.9_s0",
                     "finetune_scratch_s0", "pretrain_r0.75_s0", "probe_mae_r0.75_s0", "finetune_mae_r0.75_s0"}
    assert results["ratios"] == [0.75, 0.9] and results["data"]["num_classes"] == 2
    assert len(read_list(out / "labelled.csv")) == 4  # 2 per class
    ft = results["steps"]["finetune_mae_r0.9_s0"]
    assert 0 <= ft["top1"] <= 1 and ft["num_videos"] == 5 and ft["views"] == "1x1"
    # The MAE-initialised run really started from the pretrained encoder.
    cfg = load_config(out / "runs" / "finetune_mae_r0.9_s0" / "config.yaml")
    assert cfg.model.pretrained == str(out / "runs" / "pretrain_r0.9_s0" / "model_last.pt")
    assert load_config(out / "runs" / "finetune_scratch_s0" / "config.yaml").model.pretrained is None
    assert load_config(out / "runs" / "pretrain_r0.75_s0" / "config.yaml").model.mask_ratio == 0.75
    assert (out / "study.md").is_file() and (out / "study.png").read_bytes().startswith(b"\x89PNG")

    # Run again: nothing is trained or evaluated a second time.
    import hiera_video.engine.train as train_module
    monkeypatch.setattr(train_module, "train", lambda cfg: pytest.fail(f"retrained {cfg.output_dir}"))
    assert main(study_args(data, out)) == 0
    assert json.loads((out / "study.json").read_text())["steps"] == results["steps"]
    monkeypatch.undo()

    # A step whose folder holds a run of another config is an error, never continued.
    del results["steps"]["finetune_scratch_s0"]
    (out / "study.json").write_text(json.dumps(results))
    capsys.readouterr()
    assert main(study_args(data, out)[:-1] + ["optim.lr=1e-3"]) == 2
    assert "holds a run of another config" in capsys.readouterr().err


def test_study_arguments_are_checked_before_any_work(tmp_path, capsys):
    from hiera_video.commands.mae_study import main
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "s"), "--ratios", "0.5,1.5"])
    assert "mask ratios lie in (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "s"), "--classes", "nosuch"])
    assert "synthetic class set" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "s"), "--unlabelled", str(tmp_path / "u.csv")]) == 2
    assert "needs --val and --classes" in capsys.readouterr().err
