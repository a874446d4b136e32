"""A checkpoint as a Hugging Face folder in the official Hiera layout (config.json + model.safetensors,
loadable by the official `hiera` package's `from_pretrained` and by `hiera_video.create_model`), and
optionally pushed to the Hub (needs huggingface_hub and a login).

    hiera-video save-pretrained --ckpt runs/k400_l/model_best.pt --out hf/hiera_l_k400
    hiera-video save-pretrained --ckpt runs/k400_l/model_best.pt --out hf/hiera_l_k400 --push-to-hub me/hiera-l-k400
"""

import argparse

from ..cli import command, output_folder
from ..engine.evaluate import load_model
from ..models.hub import push_to_hub, save_pretrained


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint file, HF folder or hub name")
    p.add_argument("--out", type=output_folder, required=True, help="folder to write")
    p.add_argument("--model", help="architecture for checkpoints that do not record it")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the folder to this Hub repository")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")


# ImportError: huggingface_hub missing, for a Hub name or --push-to-hub (the message says what to install)
@command(__doc__, arguments, usage_errors=(ImportError,))
def main(args: argparse.Namespace) -> int:
    model, _ = load_model(args.ckpt, None, args.model, classifier=False)
    save_pretrained(model, args.out)
    print(f"wrote {args.out}")
    if args.push_to_hub:
        url = push_to_hub(model, args.push_to_hub, private=args.private)
        print(f"pushed to {url}")
    return 0
