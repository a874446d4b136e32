"""Synthetic videos made here, so that the demo and the tests need no download: the action classes and
their dataset (`actions.py`) and the writer and process pool the generators share (`video.py`). The
synthetic AVA set lives with the rest of AVA (`tasks/ava/synthetic.py`). Details: docs/synthetic.md."""
