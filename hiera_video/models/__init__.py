"""Models: the Hiera backbone, its registry, checkpoint handling (files, Hugging Face folders and the Hub)
and cost counting."""

from .checkpoints import (Checkpoint, CheckpointError, adapt_state_dict, atomic_save, load_pretrained,
                          read_checkpoint, save_model)
from .flops import count_flops, count_params
from .hiera import Hiera, TokenLayout
from .hub import push_to_hub, save_pretrained
from .mae import MAEOutput, MaskedAutoencoderHiera
from .registry import PRETRAINED, create_model, list_models, register_model

__all__ = ["Checkpoint", "CheckpointError", "Hiera", "MAEOutput", "MaskedAutoencoderHiera", "PRETRAINED", "TokenLayout", "adapt_state_dict",
           "atomic_save", "count_flops", "count_params", "create_model", "list_models", "load_pretrained",
           "push_to_hub", "read_checkpoint", "register_model", "save_model", "save_pretrained"]
