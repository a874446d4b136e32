"""Nearest neighbours by cosine similarity in an embedding folder (`hiera-video embed`).

    hiera-video retrieve --index runs/demo/embeddings --query-index 3 --k 5
    hiera-video retrieve --index runs/demo/embeddings --query new_clip.mp4 --k 5
    hiera-video retrieve --index runs/demo/embeddings --eval

--query embeds a new video with the index's own checkpoint and settings (meta.json). --eval runs
leave-one-out retrieval over the labelled videos and prints JSON with recall@1, recall@5, recall@10 and
mAP. Search is exact (chunked matrix products; no N x N matrix); --faiss uses FAISS when installed.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from ..api import embed
from ..cli import command
from ..engine.evaluate import ClipSettings
from ..retrieval import leave_one_out, load_index, search, search_faiss


def embed_video(path: str, meta: dict) -> torch.Tensor:
    """A new video's embedding, made exactly as the index's were (checkpoint, settings, views, pooling)."""

    return embed(path, meta["checkpoint"], tuple(meta["views"]), meta["pooling"], model_name=meta.get("model"),
                 settings=ClipSettings(**meta["clip_settings"]))


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, required=True, help="embedding folder")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", help="a video file to embed and search with")
    q.add_argument("--query-index", type=int, help="row of the index to search with (itself excluded)")
    q.add_argument("--eval", action="store_true", help="leave-one-out recall@1/5/10 and mAP, as JSON")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--faiss", action="store_true", help="search with FAISS (exact inner product) if installed")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    emb, paths, labels, meta = load_index(args.index)
    if args.eval:
        print(json.dumps(leave_one_out(emb, labels), indent=2))
        return 0
    if args.query is not None:
        query, exclude = embed_video(args.query, meta), None
    else:
        if not 0 <= args.query_index < len(emb):
            raise ValueError(f"--query-index {args.query_index} is outside the index's {len(emb)} rows")
        if not torch.isfinite(emb[args.query_index]).all():
            raise ValueError(f"row {args.query_index} ({paths[args.query_index]}) is an unreadable video")
        query, exclude = emb[args.query_index:args.query_index + 1], torch.tensor([args.query_index])
    find = search_faiss if args.faiss else search
    scores, idx = find(query, emb, args.k, exclude)
    results = [{"rank": r + 1, "index": i, "path": paths[i], "label": labels[i], "score": round(s, 6)}
               for r, (s, i) in enumerate(zip(scores[0].tolist(), idx[0].tolist())) if i >= 0]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
