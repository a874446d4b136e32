"""Frozen-feature probes: k-NN votes and the linear probe on hand-made embeddings, and `hiera-video probe`
end to end on a random initialisation and an MAE checkpoint."""

import json

import pytest
import torch

import hiera_video
from hiera_video.engine.probe import knn_scores, linear_probe


def test_knn_votes_follow_the_nearest_rows():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    queries = torch.tensor([[1.0, 0.05], [0.05, 1.0]])
    votes = knn_scores(train, labels, queries, num_classes=3, k=2)
    assert votes.argmax(1).tolist() == [0, 1] and (votes[:, 2] == 0).all()  # a class nobody has gets no vote
    one = knn_scores(train, labels, queries, num_classes=2, k=1)
    assert ((one > 0).sum(1) == 1).all()  # one neighbour, one vote
    # k larger than the training set: every row votes, weighted by similarity
    assert knn_scores(train, labels, queries, 2, k=100).shape == (2, 2)


def test_leave_one_out_never_counts_a_row_as_its_own_neighbour():
    # Row 2 is a lone label-1 row among label-0 rows: with itself excluded, its neighbours all say 0.
    emb = torch.tensor([[1.0, 0.0], [0.95, 0.05], [0.9, 0.1], [0.0, 1.0], [0.05, 1.0]])
    labels = torch.tensor([0, 0, 1, 2, 2])
    pred = knn_scores(emb, labels, emb, num_classes=3, k=1, leave_one_out=True).argmax(1)
    assert pred.tolist() == [0, 0, 0, 2, 2]


def test_linear_probe_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g) * 3
    labels = torch.arange(4).repeat_interleave(10)
    x = centres[labels] + 0.3 * torch.randn(40, 16, generator=g)
    q = centres[labels] + 0.3 * torch.randn(40, 16, generator=g)
    logits = linear_probe(x, labels, q, num_classes=4)
    assert (logits.argmax(1) == labels).all()
    # deterministic: the same fit twice
    torch.testing.assert_close(logits, linear_probe(x, labels, q, num_classes=4))


@pytest.fixture(scope="module")
def mae_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("probe") / "mae.pt"
    hiera_video.save_model(hiera_video.create_model("mae_hiera_test_8x64"), path)
    return path


def probe_args(data, out, ckpt):
    return ["--ckpt", str(ckpt), "--train", str(data / "train.csv"), "--val", str(data / "val.csv"), "--out",
            str(out), "--workers", "0", "data.num_frames=8", "data.sampling_rate=2", "data.crop_size=64"]


def test_probe_command_on_random_and_mae_weights(data, mae_checkpoint, tmp_path, capsys, fresh_accelerate):
    from hiera_video.commands.probe import main
    args = ["--cfg", "synthetic_mae_recipe_finetune", "--model", "hiera_test_8x64"]
    assert main(probe_args(data, tmp_path / "r0", "random") + args) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert first["num_train"] == 8 and first["num_val"] == 5 and first["num_classes"] == 2
    assert first["protocol"] == "train -> val" and 0 <= first["knn_top1"] <= 1 and "linear_top1" in first
    assert json.loads((tmp_path / "r0" / "probe.json").read_text())["knn_top1"] == first["knn_top1"]
    # The random encoder is the model's own initialisation under --seed: the same seed, the same weights.
    main(probe_args(data, tmp_path / "r0b", "random") + args)
    a = torch.load(tmp_path / "r0" / "random_init.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "r0b" / "random_init.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    # An MAE checkpoint is probed through its encoder; without --train, leave-one-out on --val.
    assert main(["--ckpt", str(mae_checkpoint), "--val", str(data / "val.csv"), "--out", str(tmp_path / "m"),
                 "--workers", "0", "--cfg", "synthetic_mae_recipe_finetune", "data.num_frames=8",
                 "data.sampling_rate=2", "data.crop_size=64"]) == 0
    loo = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert loo["protocol"] == "leave-one-out on val" and "linear_top1" not in loo and loo["dimension"] == 128


def test_probe_errors_name_the_culprit(data, tmp_path, capsys):
    from hiera_video.commands.probe import main
    assert main(["--ckpt", "random", "--val", str(data / "val.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "--ckpt random needs --model" in capsys.readouterr().err
    unlabelled = tmp_path / "u.csv"
    unlabelled.write_text("".join(f"{data / 'val' / f'{i}.mp4'}\n" for i in range(5)))
    assert main(["--ckpt", "random", "--model", "hiera_test_8x64", "--val", str(unlabelled), "--out",
                 str(tmp_path / "y"), "--workers", "0"]) == 2
    assert "unlabelled lines" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# mae-diagnose: the two measurements behind docs/mae_study.md
# --------------------------------------------------------------------------------------------------
def test_stage_statistics_see_a_collapsed_stage():
    from hiera_video.tasks.mae.diagnose import stage_statistics
    torch.manual_seed(0)
    model = hiera_video.create_model("hiera_test_8x64", num_classes=0).eval()
    clips = torch.randn(4, 3, 8, 64, 64)
    healthy = stage_statistics(model, clips)
    assert [r["channels"] for r in healthy] == [16, 32, 64, 128]
    assert all(1 <= r["effective_rank"] <= r["channels"] and 0 <= r["common_share"] <= 1 for r in healthy)
    # The last block writes one large constant vector into every token: its energy moves into the common share.
    with torch.no_grad():
        fc2 = model.blocks[-1].mlp.fc2
        fc2.weight.zero_()
        fc2.bias.copy_(torch.randn(fc2.bias.shape) * 100)
    shifted = stage_statistics(model, clips)
    assert shifted[-1]["common_share"] > 0.999 > healthy[-1]["common_share"]
    assert shifted[:-1] == healthy[:-1]

    class Collapsed:
        """Stage 2's tokens all lie on one direction: its effective rank is 1."""
        v = torch.randn(8)

        def forward_intermediates(self, x):
            return [torch.randn(len(x), 4, 4, 8), torch.randn(len(x), 4, 4, 1) * self.v]
    rows = stage_statistics(Collapsed(), clips, batch_size=2)
    assert rows[0]["effective_rank"] > 4 and abs(rows[1]["effective_rank"] - 1) < 1e-6


def test_fusion_ablation_and_the_command(mae_checkpoint, data, tmp_path, capsys):
    from hiera_video.commands.mae_diagnose import main
    from hiera_video.tasks.mae.diagnose import fusion_ablation
    mae = hiera_video.create_model(pretrained=str(mae_checkpoint)).eval()
    clips = torch.randn(3, 3, 8, 64, 64)
    f = fusion_ablation(mae, clips, 0.75)
    assert list(f["loss_without"]) == ["stage 1", "stage 2", "stage 4"] and f["mask_ratio"] == 0.75
    assert f == fusion_ablation(mae, clips, 0.75)  # seeded masks: the same figures twice
    # Without stage 4 nothing changes when the last stage contributes nothing.
    with torch.no_grad():
        for blk in mae.blocks[-1:]:
            for p in blk.parameters():
                p.zero_()
    zeroed = fusion_ablation(mae, clips, 0.75)
    assert zeroed["increase_without"]["stage 4"] < 0.10
    args = ["--cfg", "synthetic_mae_recipe_pretrain", "--ckpt", str(mae_checkpoint), "--list", str(data / "val.csv"),
            "--out", str(tmp_path), "--videos", "3", "data.num_frames=8", "data.sampling_rate=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    result = json.loads(out.splitlines()[-1])
    assert result["videos"] == 3 and len(result["stages"]) == 4 and "fusion" in result
    assert "eff. rank" in out and json.loads((tmp_path / "diagnose.json").read_text()) == result
