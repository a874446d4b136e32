"""Hugging Face folders (`save_pretrained`), Hub ids through a fake offline cache, `push_to_hub` with a
fake HfApi, `pretrained_cfg` on loaded models, and the official code loading our folders (oracle)."""

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hiera_video
from hiera_video.models import hub, sources
from hiera_video.models.official import EXTRA_FILE
from hiera_video.errors import CheckpointError
from hiera_video.models.checkpoints import read_checkpoint, save_model
from hiera_video.models.hub import push_to_hub, save_pretrained

NAME = "hiera_test_8x64"  # the tiny video config: 8x64x64, embed_dim 16, 1 head, stages (1, 2, 3, 1)
CLASSES = [f"action {i}" for i in range(7)]
# The keyword arguments of the official constructors (hiera-transformer 0.1.4: hiera/hiera.py
# `Hiera.__init__`, hiera/hiera_mae.py `MaskedAutoencoderHiera.__init__`), written down so that this
# test does not need the official package.
OFFICIAL_HIERA_ARGS = {
    "input_size", "in_chans", "embed_dim", "num_heads", "num_classes", "stages", "q_pool", "q_stride",
    "mask_unit_size", "mask_unit_attn", "dim_mul", "head_mul", "patch_kernel", "patch_stride", "patch_padding",
    "mlp_ratio", "drop_path_rate", "norm_layer", "head_dropout", "head_init_scale", "sep_pos_embed"}
OFFICIAL_MAE_ARGS = OFFICIAL_HIERA_ARGS | {"decoder_embed_dim", "decoder_depth", "decoder_num_heads"}


def _tiny(num_classes=7, **kw):
    model = hiera_video.create_model(NAME, num_classes=num_classes, **kw)
    with torch.no_grad():  # random weights everywhere (the head starts near zero), so a misplaced tensor shows
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


@pytest.fixture
def clip():
    return torch.randn(2, 3, 8, 64, 64)


# ------------------------------------------------------------------------------------------------
# save_pretrained -> create_model
# ------------------------------------------------------------------------------------------------
def test_save_pretrained_round_trip_keeps_logits_name_and_pretrained_cfg(tmp_path, clip):
    model = _tiny()
    model.pretrained_cfg = {"classes": CLASSES, "mean": (0.45,) * 3, "std": (0.225,) * 3, "num_frames": 8,
                            "sampling_rate": 2, "crop_size": 64}
    folder = save_pretrained(model, tmp_path / "hf")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", EXTRA_FILE, "model.safetensors"]
    loaded = hiera_video.create_model(pretrained=str(folder))
    assert loaded.name == NAME and loaded.config == model.config
    torch.testing.assert_close(_logits(loaded, clip), _logits(model, clip), rtol=0, atol=0)
    assert loaded.pretrained_cfg == {"classes": CLASSES, "mean": [0.45] * 3, "std": [0.225] * 3, "num_frames": 8,
                                     "sampling_rate": 2, "crop_size": 64}
    json.dumps(loaded.pretrained_cfg)  # JSON-able


def test_mae_round_trip_keeps_decoder_and_mask_ratio(tmp_path):
    mae = hiera_video.create_model(f"mae_{NAME}", mask_ratio=0.75, norm_pix_loss=False)
    folder = save_pretrained(mae, tmp_path / "mae")
    config = json.loads((folder / "config.json").read_text())
    assert config["q_pool"] == 2 and config["decoder_num_heads"] == 2 and "num_classes" not in config
    loaded = hiera_video.create_model(pretrained=str(folder))
    assert type(loaded).__name__ == "MaskedAutoencoderHiera" and loaded.config == mae.config
    for (k, a), b in zip(mae.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("mae", [False, True], ids=["classifier", "mae"])
def test_config_json_holds_only_official_constructor_arguments(tmp_path, mae):
    model = hiera_video.create_model(f"mae_{NAME}") if mae else _tiny()
    folder = save_pretrained(model, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    extra = json.loads((folder / EXTRA_FILE).read_text())
    allowed = OFFICIAL_MAE_ARGS if mae else OFFICIAL_HIERA_ARGS
    assert set(config) <= allowed, f"non-official keys in config.json: {sorted(set(config) - allowed)}"
    # Every official argument is written (the official defaults are image Hiera-B, not ours) ...
    assert set(config) == allowed - {"norm_layer"} - ({"num_classes"} if mae else set())
    # ... and ours go to the extra file, with the name, so that our loader rebuilds the model exactly.
    assert extra["model_config"]["layer_norm_eps"] == 1e-6 and extra["model_name"] == model.name
    assert not set(extra["model_config"]) & allowed


def test_value_the_official_model_cannot_express_is_refused_or_written_aside(tmp_path, clip, caplog):
    model = _tiny(layer_norm_eps=1e-5)
    with pytest.raises(CheckpointError, match=r"layer_norm_eps=1e-05 .*official code always uses 1e-06"):
        save_pretrained(model, tmp_path / "refused")
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())
    with caplog.at_level(logging.WARNING, logger="hiera_video"):
        folder = save_pretrained(model, tmp_path / "aside", allow_non_official=True)
    assert "official code will load the folder as a different model" in caplog.text
    assert "layer_norm_eps" not in json.loads((folder / "config.json").read_text())
    loaded = hiera_video.create_model(pretrained=str(folder))
    assert loaded.config["layer_norm_eps"] == 1e-5
    torch.testing.assert_close(_logits(loaded, clip), _logits(model, clip), rtol=0, atol=0)


def test_ava_detector_is_refused_with_the_alternative(tmp_path):
    from hiera_video.tasks.ava.model import create_ava_model
    with pytest.raises(CheckpointError, match=r"not an official Hiera model.*save_model"):
        save_pretrained(create_ava_model(NAME, ava_num_classes=3), tmp_path / "ava")


def test_class_names_must_fit_the_classifier(tmp_path):
    with pytest.raises(CheckpointError, match="3 class names, the classifier 7 outputs"):
        save_pretrained(_tiny(), tmp_path / "hf", pretrained_cfg={"classes": ["a", "b", "c"]})


def test_damaged_extra_file_names_the_file(tmp_path):
    folder = save_pretrained(_tiny(), tmp_path / "hf")
    (folder / EXTRA_FILE).write_text(json.dumps({"format": "hiera-video-hf/1", "model_config": {"eps": 1}}))
    with pytest.raises(CheckpointError, match=rf"{EXTRA_FILE}: model_config keys \['eps'\]"):
        hiera_video.create_model(pretrained=str(folder))


# ------------------------------------------------------------------------------------------------
# pretrained_cfg from every kind of checkpoint
# ------------------------------------------------------------------------------------------------
DATA = dict(num_frames=8, sampling_rate=2, target_fps=30.0, sampling_mode="stride", crop_size=64,
            mean=[0.4] * 3, std=[0.2] * 3, test_short_side=73)


@pytest.mark.parametrize("suffix", ["pt", "safetensors"])
def test_project_checkpoint_gives_pretrained_cfg_and_a_resized_head_drops_the_names(tmp_path, suffix):
    path = tmp_path / f"model.{suffix}"
    save_model(_tiny(), path, data=DATA, classes=CLASSES)
    assert hiera_video.create_model(pretrained=str(path)).pretrained_cfg == {"classes": CLASSES, **DATA}
    resized = hiera_video.create_model(pretrained=str(path), num_classes=3)
    assert resized.pretrained_cfg["classes"] is None and resized.pretrained_cfg["num_frames"] == 8


def test_official_tag_metadata_in_the_schema(monkeypatch):
    from hiera_video.data.lists import read_classes
    from hiera_video.models import factory
    from hiera_video.models.registry import tag_pretrained_cfg
    cfg = tag_pretrained_cfg("hiera_base_16x224", "mae_k400_ft_k400")
    assert cfg["classes"] == read_classes("kinetics400") and len(cfg["classes"]) == 400
    assert (cfg["mean"], cfg["std"], cfg["num_frames"], cfg["sampling_rate"], cfg["crop_size"]) == (
        [0.45] * 3, [0.225] * 3, 16, 4, 224)
    monkeypatch.setattr(factory, "read_checkpoint", lambda source: source)  # what would be downloaded
    url, meta = factory.read_pretrained("hiera_base_16x224", "mae_k400_ft_k400")
    assert url.endswith("/hiera_base_16x224.pth") and meta == cfg
    assert tag_pretrained_cfg("hiera_base_16x224", "mae_k400")["classes"] is None  # an MAE has no classes


def test_model_without_checkpoint_has_an_empty_pretrained_cfg():
    assert hiera_video.create_model(NAME).pretrained_cfg == {}


# ------------------------------------------------------------------------------------------------
# Hub ids: paths win, a fake offline cache, errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("facebook/hiera_base_16x224.mae_k400_ft_k400", True), ("hf-hub:acme/tiny", True), ("acme/tiny@v1.0", True),
    ("runs/model.pt", False), ("./acme/tiny", False), ("/abs/folder", False), ("a/b/c", False),
    ("model.safetensors", False), ("~/x/y", False)])
def test_hub_id_or_path(value, expected):
    assert sources.is_hub_id(value) is expected


def test_existing_local_path_wins_over_a_hub_id(tmp_path, monkeypatch, clip):
    model = _tiny()
    save_pretrained(model, tmp_path / "acme" / "tiny")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # any Hub access would now fail
    loaded = hiera_video.create_model(pretrained="acme/tiny")
    torch.testing.assert_close(_logits(loaded, clip), _logits(model, clip), rtol=0, atol=0)


def _fake_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str = "0123456789abcdef" * 2 + "01234567",
                    ref: str = "main") -> None:
    """What huggingface_hub leaves after a download: models--owner--name/{blobs,refs,snapshots}, each
    snapshot file a relative symlink to its blob (named by its hash)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    (repo / "blobs").mkdir(exist_ok=True)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hf_home" / "hub"
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_official_hub_name_loads_offline_from_the_cache_with_the_tag_metadata(tmp_path, offline_cache, clip):
    # Official repos have config.json + model.safetensors only; a 400-class tiny model stands in.
    model = _tiny(num_classes=400)
    folder = save_pretrained(model, tmp_path / "made")
    (folder / EXTRA_FILE).unlink()
    repo_id = "facebook/hiera_base_16x224.mae_k400_ft_k400"
    _fake_hub_cache(offline_cache, repo_id, folder)
    for value in (repo_id, f"hf-hub:{repo_id}"):
        loaded = hiera_video.create_model(pretrained=value)
        torch.testing.assert_close(_logits(loaded, clip), _logits(model, clip), rtol=0, atol=0)
        cfg = loaded.pretrained_cfg
        assert len(cfg["classes"]) == 400 and cfg["classes"][0] == "abseiling"
        assert (cfg["num_frames"], cfg["sampling_rate"], cfg["hub_id"]) == (16, 4, repo_id)


def test_any_hub_repo_written_by_save_pretrained_loads_with_its_pretrained_cfg(tmp_path, offline_cache, monkeypatch):
    model = _tiny()
    model.pretrained_cfg = {"classes": CLASSES, "num_frames": 8}
    _fake_hub_cache(offline_cache, "acme/tiny-hiera", save_pretrained(model, tmp_path / "made"))
    monkeypatch.setenv("HF_HUB_CACHE", str(offline_cache))  # HF_HUB_CACHE wins over HF_HOME
    monkeypatch.setenv("HF_HOME", str(tmp_path / "elsewhere"))
    loaded = hiera_video.create_model(pretrained="hf-hub:acme/tiny-hiera")
    assert loaded.name == NAME and loaded.pretrained_cfg == {"classes": CLASSES, "num_frames": 8}
    ckpt = read_checkpoint("acme/tiny-hiera")  # what evaluation reads: the Checkpoint carries it too
    assert ckpt.source == "hf-hub:acme/tiny-hiera" and ckpt.pretrained_cfg == loaded.pretrained_cfg


def test_hub_revision_picks_that_snapshot(tmp_path, offline_cache):
    _fake_hub_cache(offline_cache, "acme/tiny-hiera", save_pretrained(_tiny(), tmp_path / "main"))
    _fake_hub_cache(offline_cache, "acme/tiny-hiera", save_pretrained(_tiny(num_classes=5), tmp_path / "v2"),
                    commit="f" * 40, ref="v2")
    assert hiera_video.create_model(pretrained="hf-hub:acme/tiny-hiera").num_classes == 7
    assert hiera_video.create_model(pretrained="hf-hub:acme/tiny-hiera@v2").num_classes == 5


def test_hub_repo_missing_from_the_offline_cache_says_so(offline_cache):
    with pytest.raises(CheckpointError, match=r"hf-hub:acme/absent: could not get it .*HF_HUB_OFFLINE"):
        hiera_video.create_model(pretrained="hf-hub:acme/absent")


def test_hub_name_without_huggingface_hub_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match="pip install huggingface_hub"):
        hiera_video.create_model(pretrained="hf-hub:facebook/hiera_base_16x224.mae_k400_ft_k400")
    # A bare owner/name may be a mistyped local path as well: the error says both.
    with pytest.raises(CheckpointError, match=r"facebook/hiera_base_16x224.mae_k400_ft_k400 is no local file or "
                                              r"folder, and as a Hugging Face Hub id: .*pip install huggingface_hub"):
        hiera_video.create_model(pretrained="facebook/hiera_base_16x224.mae_k400_ft_k400")
    with pytest.raises(ImportError, match="pip install huggingface_hub"):
        push_to_hub(_tiny(), "acme/tiny")


def test_missing_file_that_looks_like_a_path_is_not_sent_to_the_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(CheckpointError, match="checkpoint not found: runs/missing.pt"):
        hiera_video.create_model(pretrained="runs/missing.pt")
    # "./" marks a local path, even when the rest would read as owner/name (Path() would drop it).
    with pytest.raises(CheckpointError, match=r"^checkpoint not found: \./runs/missing$"):
        hiera_video.create_model(pretrained="./runs/missing")


def test_a_mistyped_local_folder_names_both_readings(offline_cache):
    with pytest.raises(CheckpointError, match=r"checkpoint not found: runs/k400_l is no local file or folder, "
                                              r"and as a Hugging Face Hub id: hf-hub:runs/k400_l: could not get"):
        hiera_video.create_model(pretrained="runs/k400_l")


def test_a_config_may_name_a_hub_checkpoint():
    from hiera_video.config import ConfigError, check_pretrained
    check_pretrained("hiera_base_16x224", "facebook/hiera_base_16x224.mae_k400_ft_k400")
    check_pretrained("hiera_base_16x224", "hf-hub:acme/tiny@v2")
    with pytest.raises(ConfigError, match="model.pretrained: ./nope.pt is neither"):
        check_pretrained("hiera_base_16x224", "./nope.pt")


# ------------------------------------------------------------------------------------------------
# push_to_hub with a fake HfApi
# ------------------------------------------------------------------------------------------------
def test_push_to_hub_creates_the_repo_and_uploads_the_folder(monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw))

        def upload_folder(self, repo_id, folder_path, **kw):
            files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
            calls.append(("upload_folder", repo_id, files, kw))
            return "commit-info"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    model = _tiny()
    model.pretrained_cfg = {"classes": CLASSES}
    assert push_to_hub(model, "acme/tiny", private=True, token="t0k", commit_message="tiny") == "commit-info"
    assert [c[0] for c in calls] == ["init", "create_repo", "upload_folder"] and calls[0][1] == "t0k"
    assert calls[1][1] == "acme/tiny" and calls[1][2]["exist_ok"] is True and calls[1][2]["private"] is True
    _, repo_id, files, kw = calls[2]
    assert repo_id == "acme/tiny" and kw["commit_message"] == "tiny"
    assert sorted(files) == ["config.json", EXTRA_FILE, "model.safetensors"]
    assert set(json.loads(files["config.json"])) <= OFFICIAL_HIERA_ARGS
    assert json.loads(files[EXTRA_FILE])["pretrained_cfg"]["classes"] == CLASSES


# ------------------------------------------------------------------------------------------------
# The official code loads our folders (oracle)
# ------------------------------------------------------------------------------------------------
_ORACLE_SCRIPT = r"""
import json, os, sys
if os.environ.get("ORACLE_BLOCK_HUB"):
    sys.modules["huggingface_hub"] = None  # as if it were not installed (the official hfhub.py checks)
import torch, safetensors.torch, hiera
folder, out = sys.argv[1], sys.argv[2]
config = json.load(open(os.path.join(folder, "config.json")))
cls = hiera.MaskedAutoencoderHiera if "decoder_embed_dim" in config else hiera.Hiera
model = cls(**config)
safetensors.torch.load_model(model, os.path.join(folder, "model.safetensors"), strict=True)
models = {"constructor": model}
try:
    import huggingface_hub  # noqa: F401
    models["from_pretrained"] = cls.from_pretrained(folder)
except ImportError:
    pass
inputs = torch.load(os.path.join(folder, "..", "inputs.pt"), weights_only=True)
result = {}
for how, m in models.items():
    m.train()  # train mode returns logits (eval applies softmax); drop path and dropout are 0
    with torch.no_grad():
        if cls is hiera.Hiera:
            result[how] = m(inputs["x"])
        else:  # the MAE with our mask (True = keep): loss and predictions
            loss, pred, _, _ = m(inputs["x"], mask=inputs["mask"])
            result[how] = torch.cat([loss.reshape(1), pred.flatten()])
torch.save(result, out)
"""


def _oracle_python() -> str | None:
    python = os.environ.get("ORACLE_PYTHON", "/tmp/oracle-venv/bin/python")
    if not Path(python).exists():
        return None
    ok = subprocess.run([python, "-c", "import hiera, safetensors"], capture_output=True, timeout=120)
    return python if ok.returncode == 0 else None


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["classifier", "mae"])
@pytest.mark.parametrize("hub_installed", [True, False], ids=["with-huggingface_hub", "without-huggingface_hub"])
def test_official_hiera_loads_our_folder_and_gives_our_outputs(tmp_path, clip, hub_installed, kind):
    python = _oracle_python()
    if python is None:
        pytest.skip("no official Hiera: set ORACLE_PYTHON or build /tmp/oracle-venv (shared/oracle/setup-venv.sh)")
    if kind == "mae":
        model = hiera_video.create_model(f"mae_{NAME}")
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.2)
        mask = model.get_random_mask(len(clip), 0.75)
        with torch.no_grad():
            out = model(clip, mask=mask)
        ours = torch.cat([out.loss.reshape(1), out.pred.flatten()])
    else:
        model, mask = _tiny(), None
        ours = _logits(model, clip)
    folder = save_pretrained(model, tmp_path / "hf")
    torch.save({"x": clip, **({"mask": mask} if mask is not None else {})}, tmp_path / "inputs.pt")
    env = {**os.environ, "ORACLE_BLOCK_HUB": "" if hub_installed else "1"}
    env.pop("PYTHONPATH", None)  # the oracle venv's own packages only
    run = subprocess.run([python, "-c", _ORACLE_SCRIPT, str(folder), str(tmp_path / "out.pt")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = torch.load(tmp_path / "out.pt", weights_only=True)
    if hub_installed and "from_pretrained" not in result:
        pytest.skip("huggingface_hub is not installed in the oracle venv: from_pretrained not checked")
    assert sorted(result) == (["constructor", "from_pretrained"] if hub_installed else ["constructor"])
    for how, theirs in result.items():
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item(), msg=how)


@pytest.mark.oracle
def test_official_hiera_loads_a_feature_model_folder(tmp_path):
    """num_classes=0: the official Hiera still has a head, of 0 outputs; the folder carries it empty."""
    python = _oracle_python()
    if python is None:
        pytest.skip("no official Hiera: set ORACLE_PYTHON or build /tmp/oracle-venv (shared/oracle/setup-venv.sh)")
    model = hiera_video.create_model(NAME, num_classes=0)
    folder = save_pretrained(model, tmp_path / "hf")
    code = ("import json, sys, hiera, safetensors.torch as st; m = hiera.Hiera(**json.load(open(sys.argv[1] + "
            "'/config.json'))); st.load_model(m, sys.argv[1] + '/model.safetensors', strict=True)")
    run = subprocess.run([python, "-c", code, str(folder)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert hiera_video.create_model(pretrained=str(folder)).num_classes == 0
