"""Side by side with the official implementation (PyPI hiera-transformer 0.1.4) at full size.

Needs the official package, which the project does not depend on; skipped without it. To run:
    ../shared/oracle/setup-venv.sh
    PYTHONPATH=. /tmp/oracle-venv/bin/python -m pytest tests/test_official.py
"""

import pytest
import torch

import hiera_video
from conftest import assert_close_rel

hiera = pytest.importorskip("hiera", reason="official Hiera not installed (see shared/oracle/setup-venv.sh)")
pytestmark = [pytest.mark.oracle, pytest.mark.slow]


@pytest.fixture(scope="module")
def official_b(tmp_path_factory):
    torch.manual_seed(0)
    official = hiera.hiera_base_16x224(pretrained=False)
    with torch.no_grad():  # random weights: perturb every tensor so no permutation or bias can hide
        for p in official.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    path = tmp_path_factory.mktemp("official") / "hiera_base_16x224.pth"
    torch.save({"model_state": official.state_dict()}, path)
    return official.train(), path  # train mode: logits (no softmax); drop path is 0


def test_full_size_hiera_b_video_matches_official_logits(official_b):
    official, path = official_b
    ours = hiera_video.create_model("hiera_base_16x224", pretrained=str(path)).eval()
    x = torch.randn(2, 3, 16, 224, 224)
    with torch.no_grad():
        expected, maps = official(x, return_intermediates=True)
        assert_close_rel(ours(x), expected, rtol=1e-4)
        for ours_map, official_map in zip(ours.forward_intermediates(x), maps):
            assert_close_rel(ours_map, official_map, rtol=1e-4)


def test_full_size_masked_encoder_matches_official(official_b):
    official, path = official_b
    ours = hiera_video.create_model("hiera_base_16x224", pretrained=str(path)).eval()
    x = torch.randn(1, 3, 16, 224, 224)
    mask = ours.get_random_mask(1, 0.9)
    with torch.no_grad():
        _, maps = official(x, mask=mask, return_intermediates=True)
        for ours_map, official_map in zip(ours.forward_intermediates(x, mask=mask), maps):
            assert_close_rel(ours_map, official_map, rtol=1e-4)


def test_full_size_mae_b_matches_official_with_the_same_mask():
    torch.manual_seed(0)
    official = hiera.mae_hiera_base_16x224(pretrained=False)
    with torch.no_grad():
        for p in official.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    # The official builder keeps its constructor's 16 decoder heads; ours default to the paper's 8.
    ours = hiera_video.create_model("mae_hiera_base_16x224", decoder_num_heads=16)
    ours.load_state_dict(official.state_dict())  # strict: identical keys and shapes
    x = torch.randn(2, 3, 16, 224, 224)
    mask = ours.get_random_mask(2, 0.9)
    with torch.no_grad():
        loss, pred, label, _ = official.train()(x, mask=mask)
        out = ours.train()(x, mask=mask)
    assert_close_rel(out.pred, pred, rtol=1e-4)
    assert torch.equal(out.label, label)
    torch.testing.assert_close(out.loss, loss, rtol=1e-5, atol=0)
