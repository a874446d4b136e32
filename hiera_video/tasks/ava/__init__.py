"""AVA v2.2 action detection (`task: ava`), all of it in this folder: the config section (`config.py`),
the official file formats (`io.py`), keyframe clips with their boxes (`dataset.py`), the Hiera RoI
detector (`model.py`), the task for the shared loop and evaluation (`task.py`), the official
frame-mAP (`metric.py`), keyframe pictures (`viz.py`) and a synthetic set in the official layout
(`synthetic.py`). Details: docs/ava.md."""
