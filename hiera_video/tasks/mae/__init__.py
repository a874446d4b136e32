"""MAE pretraining (`task: mae`): the task (`task.py`), the health check of a pretrained encoder
(`diagnose.py`) and the study that asks whether pretraining pays (`study.py`)."""
