"""hiera-video: video action recognition with Hiera (Ryali et al., ICML 2023).

Public API (README: "Python API"):
    create_model(name, pretrained=None, num_classes=None, **overrides) -> Hiera
    list_models(pattern="*") -> list of registered names
    read_checkpoint / load_pretrained / save_model: checkpoint formats (hiera_video.models; docs/checkpoints.md)
    save_pretrained(model, folder) / push_to_hub(model, repo_id): Hugging Face folders, official layout
    export_model(model, path, format="onnx" | "torch-export"): inference exports, checked against eager
    load_classifier(ckpt) -> model, predict(paths, ckpt, k=5, views=(5, 3)) -> top-k per video
    embed(paths, ckpt, views=(1, 1)) -> [N, D] L2-normalised embeddings
    train(cfg_or_name, overrides) -> last metrics; load_config(path_or_shipped_name, overrides) -> Config
The command line is `hiera-video COMMAND` (`python -m hiera_video COMMAND`); `hiera-video --help` lists them.
"""

from .config import load_config
from .api import embed, load_classifier, predict, train
from .export import export_model
from .models import (CheckpointError, Hiera, create_model, list_models, load_pretrained, push_to_hub,
                     read_checkpoint, save_model, save_pretrained)
from .tasks.ava.model import HieraAVA  # registers the detector, so create_model(pretrained=) rebuilds one

__version__ = "0.1.0"
__all__ = ["CheckpointError", "Hiera", "HieraAVA", "create_model", "embed", "export_model", "list_models", "load_classifier",
           "load_config", "load_pretrained", "predict", "push_to_hub", "read_checkpoint", "save_model",
           "save_pretrained", "train", "__version__"]
