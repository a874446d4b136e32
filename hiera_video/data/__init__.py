"""The input side: data lists, video decoding, frame sampling, transforms, mixing, datasets and
synthetic data."""

# Before anything imports decord: see the note in decode.py.
import av  # noqa: F401
