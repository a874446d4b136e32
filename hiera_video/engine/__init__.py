"""Training and evaluation engines: the finetuning loop, optimizer groups and schedules."""
