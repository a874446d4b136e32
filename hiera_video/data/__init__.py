"""The input side: data lists, video decoding, frame sampling, transforms, mixing, datasets and
and the checks of video files."""

# Before anything imports decord: see the note in decode.py.
import av  # noqa: F401
