"""Nearest-neighbour search over clip embeddings (cosine similarity), and leave-one-out retrieval
metrics.

Exact search by chunked matrix products: queries and index are both processed in blocks and only a
running top-k is kept, so a million 768-d embeddings are searched without an N x N matrix. FAISS
(`IndexFlatIP`, also exact) is used instead when asked for and installed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch


def load_index(folder: str | Path) -> tuple[torch.Tensor, list[str], list[int | None], dict]:
    """(embeddings [N, D] float32, paths, labels (None where unlabelled), meta) of an embedding folder."""
    folder = Path(folder)
    for name in ("embeddings.npy", "index.csv", "meta.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: not an embedding folder "
                                    f"(`hiera-video embed` writes one)")
    emb = torch.from_numpy(np.load(folder / "embeddings.npy"))
    with open(folder / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(emb):
        raise ValueError(f"{folder}: index.csv has {len(rows)} rows but embeddings.npy {len(emb)}")
    labels = [int(r["label"]) if r["label"] != "" else None for r in rows]
    return emb, [r["path"] for r in rows], labels, json.loads((folder / "meta.json").read_text())


def search(queries: torch.Tensor, index: torch.Tensor, k: int, exclude: torch.Tensor | None = None,
           query_block: int = 1024, index_block: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k cosine neighbours of each query. Embeddings should be L2-normalised; NaN rows of the index
    (unreadable videos) are never returned. `exclude` [Q] names one index row per query to skip (the
    query itself, for leave-one-out). Returns (scores [Q, k], indices [Q, k]); -1 / -inf pad when the
    index has fewer than k usable rows."""
    Q, N = len(queries), len(index)
    valid = torch.isfinite(index).all(1)
    index = torch.where(valid.unsqueeze(1), index, torch.zeros_like(index))
    best_s = torch.full((Q, k), float("-inf"))
    best_i = torch.full((Q, k), -1, dtype=torch.long)
    for q0 in range(0, Q, query_block):
        q = queries[q0:q0 + query_block]
        s_acc, i_acc = best_s[q0:q0 + query_block], best_i[q0:q0 + query_block]
        for n0 in range(0, N, index_block):
            block = index[n0:n0 + index_block]
            scores = q @ block.T  # [b, n]
            scores[:, ~valid[n0:n0 + index_block]] = float("-inf")
            if exclude is not None:
                ex = exclude[q0:q0 + query_block] - n0
                rows = torch.nonzero((ex >= 0) & (ex < len(block))).squeeze(1)
                scores[rows, ex[rows]] = float("-inf")
            top_s, top_i = scores.topk(min(k, scores.shape[1]), dim=1)
            merged_s = torch.cat([s_acc, top_s], 1)
            merged_i = torch.cat([i_acc, top_i + n0], 1)
            s_acc, order = merged_s.topk(k, dim=1)
            i_acc = merged_i.gather(1, order)
        best_s[q0:q0 + query_block], best_i[q0:q0 + query_block] = s_acc, i_acc
    best_i[~torch.isfinite(best_s)] = -1
    return best_s, best_i


def search_faiss(queries: torch.Tensor, index: torch.Tensor, k: int, exclude: torch.Tensor | None = None):
    """The same as `search` with FAISS's exact inner-product index (needs `faiss` installed)."""
    import faiss  # optional: the exact search above needs only torch
    valid = torch.isfinite(index).all(1)
    rows = torch.nonzero(valid).squeeze(1)
    fi = faiss.IndexFlatIP(index.shape[1])
    fi.add(index[rows].numpy().astype(np.float32))
    extra = 1 if exclude is not None else 0
    s, i = fi.search(queries.numpy().astype(np.float32), min(k + extra, len(rows)))
    s, i = torch.from_numpy(s), rows[torch.from_numpy(i).clamp(min=0)]
    if exclude is not None:
        keep = i != exclude.unsqueeze(1)
        s = torch.stack([r[m][:k] for r, m in zip(s, keep)])
        i = torch.stack([r[m][:k] for r, m in zip(i, keep)])
    return s[:, :k], i[:, :k]


def leave_one_out(embeddings: torch.Tensor, labels: list[int | None], ks=(1, 5, 10), block: int = 512) -> dict:
    """Every labelled, readable video queries all others: recall@k (a same-label video among the top k)
    and mAP (mean over queries of the average precision of the full ranking). Queries whose label
    appears nowhere else are left out and counted. O(N^2) time in blocks, O(block x N) memory."""
    valid = torch.isfinite(embeddings).all(1) & torch.tensor([lb is not None for lb in labels])
    rows = torch.nonzero(valid).squeeze(1)
    emb = embeddings[rows]
    lab = torch.tensor([labels[i] for i in rows.tolist()])
    N = len(rows)
    hits = {k: 0 for k in ks}
    ap_sum, queries, lonely = 0.0, 0, 0
    for q0 in range(0, N, block):
        q = emb[q0:q0 + block]
        scores = q @ emb.T  # [b, N]
        b = len(q)
        scores[torch.arange(b), torch.arange(q0, q0 + b)] = float("-inf")  # not itself
        order = scores.argsort(dim=1, descending=True)[:, :N - 1]  # the query itself sorts last
        same = (lab[order] == lab[q0:q0 + b].unsqueeze(1)).float()  # [b, N-1] in rank order
        positives = same.sum(1)
        for k in ks:
            hits[k] += int((same[:, :k].sum(1) > 0)[positives > 0].sum())
        ranks = torch.arange(1, N, dtype=torch.float32)
        precision_at_hits = same.cumsum(1) / ranks * same
        ap = precision_at_hits.sum(1) / positives.clamp(min=1)
        ap_sum += float(ap[positives > 0].sum())
        queries += int((positives > 0).sum())
        lonely += int((positives == 0).sum())
    out = {f"recall@{k}": round(hits[k] / max(queries, 1), 6) for k in ks}
    out.update({"mAP": round(ap_sum / max(queries, 1), 6), "queries": queries, "skipped_no_positive": lonely,
                "skipped_unreadable_or_unlabelled": len(labels) - N})
    return out
