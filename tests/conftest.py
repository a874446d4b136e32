"""Shared test helpers: the official reference fixtures and tiny models."""

import json
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


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
