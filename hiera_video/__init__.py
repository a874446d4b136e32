"""hiera-video: video action recognition with Hiera (Ryali et al., ICML 2023).

Public API:
    create_model(name, pretrained=None, num_classes=None, **overrides) -> Hiera
    list_models(pattern="*") -> list of registered names
    read_checkpoint / load_pretrained / save_model: checkpoint formats (see hiera_video.models.checkpoints)
"""

from .models import (CheckpointError, Hiera, create_model, list_models, load_pretrained, read_checkpoint,
                     save_model)

__version__ = "0.1.0"
__all__ = ["CheckpointError", "Hiera", "create_model", "list_models", "load_pretrained", "read_checkpoint",
           "save_model", "__version__"]
