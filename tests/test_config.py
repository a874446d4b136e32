"""Configs: YAML + dotted overrides, errors naming the key, the shipped configs."""

from pathlib import Path

import pytest

from hiera_video.config import Config, ConfigError, load_config, save_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_overrides_are_parsed_as_yaml_and_typed():
    cfg = load_config(None, ["train.epochs=3", "optim.grad_clip=null", "data.scale=[0.5, 1]", "optim.lr=1",
                             "data.train_list=/d/train list.csv", "train.resume=true"])
    assert cfg.train.epochs == 3 and cfg.optim.grad_clip is None and cfg.data.scale == [0.5, 1.0]
    assert isinstance(cfg.optim.lr, float) and cfg.data.train_list == "/d/train list.csv" and cfg.train.resume


@pytest.mark.parametrize("override,match", [
    ("train.epoch=3", r"unknown config key 'train.epoch'; did you mean 'train.epochs'\?"),
    ("optim.layerdecay=0.9", r"did you mean 'optim.layer_decay'"),
    ("model.nam=x", r"did you mean 'model.name'"),
    ("train.epochs=three", r"train.epochs must be int, got 'three'"),
    ("train.resume=1", r"train.resume must be bool, got 1"),
    ("data.scale=[a, 1]", r"data.scale\[0\] must be float"),
    ("train.mixed_precision=fp8", r"train.mixed_precision must be no, fp16 or bf16"),
    ("train.batch_size=3", r"train.batch_size \(3\) must be a multiple of data.num_repeats \(2\)"),
    ("optim.layer_decay=0", r"optim.layer_decay must be in \(0, 1\]"),
    ("epochs", r"must look like key=value"),
])
def test_errors_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_unknown_key_in_a_file_names_file_and_key(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 2\n  batchsize: 4\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown config key 'train.batchsize'; did you mean 'train.batch_size'"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("train: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"d.yaml: train must be a mapping"):
        load_config(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("train: {epochs: 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "e.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_tags_are_not_executed(tmp_path):
    (tmp_path / "evil.yaml").write_text("output_dir: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "evil.yaml")


def test_saved_config_reads_back_equal(tmp_path):
    cfg = load_config(None, ["train.epochs=7", "data.hflip=false", "model.pretrained=/x.pth"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)


PAPER = Path(__file__).parents[2] / "shared" / "reference" / "hiera_paper.yaml"


@pytest.mark.skipif(not PAPER.exists(), reason="shared/reference/hiera_paper.yaml not beside the checkout")
@pytest.mark.parametrize("config,size", [("k400_hiera_b", "base"), ("k400_hiera_b+", "base_plus"),
                                         ("k400_hiera_l", "large"), ("k400_hiera_h", "huge"),
                                         ("k600_hiera_l", "large"), ("k700_hiera_l", "large")])
def test_kinetics_configs_follow_the_paper_recipe(config, size):
    import yaml
    recipe = yaml.safe_load(PAPER.read_text())["recipes"]["kinetics_finetune"]
    cfg = load_config(Path(__file__).parents[1] / "configs" / f"{config}.yaml")
    assert cfg.optim.lr == recipe["lr"][size] and cfg.optim.lr_batch_size == recipe["batch_size"]
    assert cfg.train.epochs == recipe["epochs"][size] and cfg.optim.warmup_epochs == recipe["warmup_epochs"]
    assert cfg.model.drop_path == recipe["drop_path"][size] and cfg.model.dropout == recipe["dropout"][size]
    assert cfg.optim.weight_decay == recipe["weight_decay"] and cfg.optim.betas == recipe["betas"]
    assert cfg.optim.grad_clip == recipe["grad_clip"] and cfg.data.num_repeats == recipe["repeated_sampling"]
    assert (cfg.data.mixup, cfg.data.cutmix, cfg.data.label_smoothing) == (
        recipe["mixup"], recipe["cutmix"], recipe["label_smoothing"])
    assert (cfg.data.randaug_magnitude, cfg.data.randaug_std) == (recipe["randaug"]["n"], recipe["randaug"]["m_std"])
    # MAE-ST's finetuning loader: rand-m7-mstd0.5-inc1 (timm's default of 2 ops) on the frames, then the crop
    assert (cfg.data.randaug_num_ops, cfg.data.randaug_order) == (2, "before_crop")
    assert (cfg.data.num_frames, cfg.data.sampling_rate) == (16, 4)
    assert (cfg.eval.num_spatial_crops, cfg.eval.num_temporal_clips) == (3, 5)
    global_batch = cfg.train.batch_size * 8 * cfg.train.grad_accum  # the 8 GPUs the comments assume
    assert global_batch == recipe["batch_size"]


@pytest.mark.skipif(not PAPER.exists(), reason="shared/reference/hiera_paper.yaml not beside the checkout")
def test_ssv2_config_follows_the_paper_recipe():
    import yaml
    recipe = yaml.safe_load(PAPER.read_text())["recipes"]["ssv2_finetune"]
    cfg = load_config(Path(__file__).parents[1] / "configs" / "ssv2_hiera_l.yaml")
    assert (cfg.optim.lr, cfg.optim.lr_batch_size, cfg.train.epochs) == (recipe["lr"], recipe["batch_size"], recipe["epochs"])
    assert cfg.optim.warmup_epochs == recipe["warmup_epochs"] and cfg.data.hflip is recipe["hflip"]
    assert cfg.data.randaug_magnitude == recipe["randaug"]["n"] and cfg.data.sampling_mode == "segment"
    assert (cfg.data.randaug_num_ops, cfg.data.randaug_order) == (2, "before_crop")
    assert cfg.model.num_classes == 174 and (cfg.eval.num_spatial_crops, cfg.eval.num_temporal_clips) == (3, 2)


def test_exponent_floats_without_a_dot_are_numbers():
    # PyYAML reads `2e-3` as a string; a float key takes it as the number it plainly is.
    cfg = load_config(None, ["optim.lr=2e-3", "optim.min_lr=1e-7"])
    assert cfg.optim.lr == 0.002 and cfg.optim.min_lr == 1e-7
    with pytest.raises(ConfigError, match="optim.lr must be float"):
        load_config(None, ["optim.lr=fast"])
