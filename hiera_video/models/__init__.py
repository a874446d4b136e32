"""Models: the Hiera backbone and its MAE, the named variants, and checkpoints (files, Hugging Face
folders and the Hub). Imports run one way, each module importing only those before it:
  hiera, mae            the networks
  pretrained_cfg        the metadata schema        sources   what a `pretrained=` value points to
  official              the official config.json, both ways
  registry              the named variants and their checkpoint tags
  hub                   Hugging Face folders and the Hub
  checkpoints           reading and writing every checkpoint format
  adapt                 fitting a checkpoint's weights to a model
  factory               create_model
Details: docs/checkpoints.md."""

from ..errors import CheckpointError
from .adapt import adapt_state_dict, load_pretrained
from .checkpoints import Checkpoint, atomic_save, read_checkpoint, save_model
from .factory import create_model
from .flops import count_flops, count_params
from .hiera import Hiera, TokenLayout
from .hub import push_to_hub, save_pretrained
from .mae import MAEOutput, MaskedAutoencoderHiera
from .registry import PRETRAINED, list_models, register_model

__all__ = ["Checkpoint", "CheckpointError", "Hiera", "MAEOutput", "MaskedAutoencoderHiera", "PRETRAINED", "TokenLayout",
           "adapt_state_dict", "atomic_save", "count_flops", "count_params", "create_model", "list_models",
           "load_pretrained", "push_to_hub", "read_checkpoint", "register_model", "save_model", "save_pretrained"]
