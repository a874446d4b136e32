"""Shared test helpers: the official reference fixtures and tiny models."""

import json
from pathlib import Path

import pytest
import torch

from hiera_video.data.lists import write_list
from videos import make_video

FIXTURES = Path(__file__).parent / "fixtures"
TOOLS = Path(__file__).parents[1] / "tools"


def load_tool(name: str):
    """A CLI under tools/ as a module, to call its main(argv) in-process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_fixture(name: str) -> dict:
    """A reference fixture written by the official implementation (see tests/fixtures/README.md)."""
    f = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    f["config"] = json.loads(bytes(f["config_json"].tolist()))
    f["state_dict"] = {k[len("state_dict."):]: v for k, v in f.items() if k.startswith("state_dict.")}
    return f


def assert_close_rel(actual: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    """Elementwise close within rtol of the tensor's scale (max |expected|), shapes equal."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 training and 5 validation videos of 2 classes, tiny (the training-loop tests)."""
    d = tmp_path_factory.mktemp("train_data")
    rows = {"train": [], "val": []}
    for split, n in (("train", 8), ("val", 5)):
        for i in range(n):
            make_video(d / split / f"{i}.mp4", num_frames=24 + 4 * i, fps=30 if i % 2 else 15, height=32,
                              width=64)
            rows[split].append((f"{split}/{i}.mp4", i % 2))
    for split in rows:
        write_list(d / f"{split}.csv", rows[split])
    return d


@pytest.fixture
def fresh_accelerate():
    """Accelerate keeps process-wide singletons; give each in-process run a clean slate."""
    from accelerate.state import AcceleratorState, GradientState
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """A folder with model.pt (a tiny 3-class classifier, classes left/right/up, that records its clip
    settings), videos 0.mp4-2.mp4 and list.csv listing them with labels 0-2."""
    import hiera_video
    d = tmp_path_factory.mktemp("tiny_classifier")
    torch.manual_seed(0)
    model = hiera_video.create_model("hiera_test_8x64", num_classes=3)
    data = dict(num_frames=8, sampling_rate=2, target_fps=30.0, sampling_mode="stride", crop_size=64,
                mean=[0.45] * 3, std=[0.225] * 3)
    hiera_video.save_model(model, d / "model.pt", data=data, classes=["left", "right", "up"])
    for i in range(3):
        make_video(d / f"{i}.mp4", num_frames=30 + 5 * i, height=32, width=64)
    write_list(d / "list.csv", [(f"{i}.mp4", i) for i in range(3)])
    return d
