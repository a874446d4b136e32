"""Retrieval: chunked exact search equals brute force; leave-one-out metrics on a hand-made case."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hiera_video.retrieval import leave_one_out, search

ROOT = Path(__file__).parents[1]


def unit(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)


def test_chunked_search_equals_brute_force():
    index, queries = unit(1000, 32), unit(37, 32, seed=1)
    index[[5, 500]] = float("nan")  # unreadable rows are never returned
    s, i = search(queries, index, k=7, query_block=8, index_block=100)
    full = queries @ torch.nan_to_num(index, nan=0.0).T
    full[:, [5, 500]] = float("-inf")
    ref_s, ref_i = full.topk(7, dim=1)
    torch.testing.assert_close(s, ref_s)
    assert torch.equal(i, ref_i)


def test_search_excludes_the_query_itself_and_pads_small_indexes():
    index = unit(3, 4)
    s, i = search(index, index, k=5, exclude=torch.arange(3))
    assert not (i == torch.arange(3).unsqueeze(1)).any()
    assert (i[:, 2:] == -1).all() and torch.isinf(s[:, 2:]).all()  # only 2 other rows exist


def test_leave_one_out_on_a_hand_made_case():
    # Two tight pairs on a circle: a0, a1 near 0 degrees; b0 near 90; b1 at 180 (far from b0).
    deg = torch.tensor([0.0, 10.0, 90.0, 180.0]) * np.pi / 180
    emb = torch.stack([deg.cos(), deg.sin()], 1)
    labels = [0, 0, 1, 1]
    out = leave_one_out(emb, labels, ks=(1, 2))
    # a0 -> a1 first (hit); a1 -> a0 first (hit); b0 (90) -> a1 (10 deg, 80 away), a0 (90 away), b1 (90
    # away, tie broken either way): miss at 1; b1 (180) -> b0 (90 away) first: hit.
    assert out["recall@1"] == pytest.approx(3 / 4)
    # APs: a0 1, a1 1, b1 1; b0's only positive is at rank 2 or 3 -> AP 1/2 or 1/3
    assert out["mAP"] in (pytest.approx((3 + 1 / 2) / 4), pytest.approx((3 + 1 / 3) / 4))
    assert out["queries"] == 4 and out["skipped_no_positive"] == 0


def test_lonely_unreadable_and_unlabelled_videos_are_left_out():
    emb = unit(5, 3)
    emb[4] = float("nan")
    out = leave_one_out(emb, [0, 0, 1, None, 1])
    assert out["queries"] == 2 and out["skipped_no_positive"] == 1 and out["skipped_unreadable_or_unlabelled"] == 2


def test_faiss_gives_the_same_neighbours():
    pytest.importorskip("faiss", reason="FAISS is optional and not installed")
    from hiera_video.retrieval import search_faiss
    index, queries = unit(500, 16), unit(9, 16, seed=2)
    s, i = search(queries, index, k=5)
    fs, fi = search_faiss(queries, index, k=5)
    assert torch.equal(i, fi) and torch.allclose(s, fs, atol=1e-5)


def test_retrieve_tool(tmp_path, capsys):
    emb = unit(6, 4).numpy()
    np.save(tmp_path / "embeddings.npy", emb)
    (tmp_path / "index.csv").write_text("path,label\n" + "".join(f"v{i}.mp4,{i % 2}\n" for i in range(6)))
    (tmp_path / "meta.json").write_text(json.dumps({"dimension": 4}))
    sys.path.insert(0, str(ROOT / "tools"))
    import retrieve
    assert retrieve.main(["--index", str(tmp_path), "--query-index", "2", "--k", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in results] == [1, 2, 3] and all(r["index"] != 2 for r in results)
    assert retrieve.main(["--index", str(tmp_path), "--eval"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"recall@1", "recall@5", "recall@10", "mAP"}
    assert retrieve.main(["--index", str(tmp_path / "nope"), "--eval"]) == 2
