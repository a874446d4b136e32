"""Layer-wise lr decay groups, no weight decay where it does not belong, the schedule, EMA."""

import math

import pytest
import torch

from hiera_video import create_model
from hiera_video.engine.optim import ModelEma, build_optimizer, layer_id, param_groups, warmup_cosine


@pytest.fixture(scope="module")
def model():
    return create_model("hiera_test_8x64", num_classes=5)  # 7 blocks


def test_layer_ids(model):
    n = len(model.blocks)
    assert layer_id("patch_embed.proj.weight", n) == 0
    assert layer_id("pos_embed_spatial", n) == 0 and layer_id("pos_embed_temporal", n) == 0
    assert layer_id("blocks.0.attn.qkv.weight", n) == 1
    assert layer_id(f"blocks.{n - 1}.mlp.fc2.bias", n) == n
    assert layer_id("norm.weight", n) == n + 1 and layer_id("head.projection.weight", n) == n + 1


def test_groups_scale_lr_by_depth_and_skip_decay_on_norms_biases_pos(model):
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.8)
    n = len(model.blocks)
    names = {id(p): name for name, p in model.named_parameters()}
    seen = [names[id(p)] for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(names.values())  # every parameter exactly once
    for g in groups:
        assert g["lr_scale"] == pytest.approx(0.8 ** (n + 1 - g["layer_id"]))
        for p in g["params"]:
            name = names[id(p)]
            no_decay = p.ndim <= 1 or name.startswith("pos_embed")
            assert g["weight_decay"] == (0.0 if no_decay else 0.05), name
    head = next(g for g in groups if any(names[id(p)] == "head.projection.weight" for p in g["params"]))
    assert head["lr_scale"] == 1.0
    pos = next(g for g in groups if any(names[id(p)] == "pos_embed_spatial" for p in g["params"]))
    assert pos["weight_decay"] == 0.0 and pos["lr_scale"] == pytest.approx(0.8 ** (n + 1))


def test_optimizer_group_lrs(model):
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.05, layer_decay=0.9)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(1e-3 * g["lr_scale"])


def test_warmup_then_cosine():
    f = warmup_cosine(warmup_steps=10, total_steps=110, min_ratio=0.01)
    warm = [f(s) for s in range(10)]
    assert warm[0] == pytest.approx(0.1) and warm[-1] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(warm, warm[1:]))
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(110) == pytest.approx(0.01) and f(500) == pytest.approx(0.01)
    tail = [f(s) for s in range(10, 111)]
    assert all(b <= a for a, b in zip(tail, tail[1:]))


def test_scheduler_moves_every_group(model):
    from hiera_video.engine.optim import build_scheduler
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    sched = build_scheduler(opt, 4, 20, 0.0)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3 * g["lr_scale"] * 0.25 for g in opt.param_groups])
    for _ in range(12):
        opt.step()  # no gradients: a no-op that keeps the scheduler's order check quiet
        sched.step()
    expected = 0.5 * (1 + math.cos(math.pi * 8 / 16))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3 * g["lr_scale"] * expected for g in opt.param_groups])


def test_ema_update_applied_and_state_dict():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEma(net, decay=0.9)
    before = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.add_(3.0)
    ema.update(net)
    trained = {k: v.clone() for k, v in net.state_dict().items()}
    expected = before * 0.9 + net[0].weight.detach() * 0.1
    sd = ema.state_dict()
    assert sd.keys() == net.state_dict().keys()  # buffers too, named as the model names them
    torch.testing.assert_close(sd["0.weight"], expected)
    assert torch.equal(sd["1.running_mean"], trained["1.running_mean"])  # buffers are copied, not averaged
    assert sd["1.num_batches_tracked"].dtype == torch.int64
    # applied(): the EMA weights in the live model for the block, the trained ones bitwise after it
    with ema.applied(net) as m:
        assert m is net
        torch.testing.assert_close(net[0].weight.detach(), expected)
    assert all(torch.equal(v, trained[k]) for k, v in net.state_dict().items())
    with pytest.raises(KeyError), ema.applied(net):
        raise KeyError("validation failed")
    assert all(torch.equal(v, trained[k]) for k, v in net.state_dict().items())
    # the state taken earlier shares no memory with the model: later updates do not change it
    with torch.no_grad():
        net[0].weight.add_(5.0)
    ema.update(net)
    torch.testing.assert_close(sd["0.weight"], expected)
    # load_state_dict into another EMA of another model of the same shape
    other_net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    other = ModelEma(other_net, 0.9)
    other.load_state_dict(sd)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in sd.items())
    assert not torch.equal(other_net[0].weight, sd["0.weight"])  # the live model keeps its own weights
    assert all(p.requires_grad for p in net.parameters())  # the live model is untouched otherwise


def test_ema_refuses_another_model_and_names_keys():
    from hiera_video.errors import CheckpointError
    ema = ModelEma(torch.nn.Linear(2, 2), 0.9)
    with pytest.raises(ValueError, match="missing.*'weight'"):
        ema.update(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    with pytest.raises(CheckpointError, match=r"shapes \['weight: checkpoint \(3, 2\) vs model \(2, 2\)"):
        ema.load_state_dict({"weight": torch.zeros(3, 2), "bias": torch.zeros(2)})
    with pytest.raises(AttributeError, match="applied"):
        ema.module


def test_check_optimizer_fits_names_groups_ids_and_state_shapes(model):
    """What an FSDP2 resume checks on the main process alone before broadcasting the optimizer state
    (engine/distributed.py); seen to fail with the shape check removed (a state tensor of another
    shape passed)."""
    import copy

    from hiera_video.engine.distributed import check_optimizer_fits
    from hiera_video.errors import CheckpointError
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.05, layer_decay=0.9)
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e-3)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    saved = optimizer.state_dict()
    check_optimizer_fits(model, optimizer, saved, "optimizer.pt")
    n = sum(len(g["params"]) for g in saved["param_groups"])
    for change, match in ((lambda s: s["param_groups"].pop(), r"optimizer.pt does not fit.*groups of \[.*this "
                                                               r"optimizer's of \[.*ids .* are not 0 to"),
                          (lambda s: s["state"].__setitem__(n, {}), rf"state for parameter ids \[{n}\]"),
                          (lambda s: s["state"][0].__setitem__("exp_avg", torch.zeros(2)),
                           r"state shapes \['pos_embed_spatial exp_avg: checkpoint \(2,\) vs parameter \(1, 256, 16\)"),
                          (lambda s: s.__setitem__("state", []), r"optimizer.pt: not an optimizer state")):
        bad = copy.deepcopy(saved)
        change(bad)
        with pytest.raises(CheckpointError, match=match):
            check_optimizer_fits(model, optimizer, bad, "optimizer.pt")
