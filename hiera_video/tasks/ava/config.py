"""The `ava:` section of a config (`task: ava`): where AVA's official files are, and how its boxes are
trained and scored."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConfigError, at_least, check_range


@dataclass
class AvaConfig:
    """AVA v2.2 detection (`task: ava`): the official files; see hiera_video/tasks/ava/dataset.py."""
    frames_root: str | None = None  # frames/{video_id}/{video_id}_{:06d}.jpg at 30 fps, 000001 = 900 s
    video_root: str | None = None  # or {video_id}.mp4 of the 15-30 min cut (time 0 = 900 s)
    train_annotations: str | None = None  # ava_train_v2.2.csv
    val_annotations: str | None = None  # ava_val_v2.2.csv
    labelmap: str | None = None  # ava_action_list_v2.2_for_activitynet_2019.pbtxt: the evaluated classes
    train_exclusions: str | None = None  # ava_train_excluded_timestamps_v2.2.csv
    val_exclusions: str | None = None  # ava_val_excluded_timestamps_v2.2.csv
    train_proposals: str | None = None  # optional person detections added to the training boxes
    val_proposals: str | None = None  # person detections scored at test time (AVA columns + score)
    train_proposal_score: float = 0.9  # training proposals kept from this score
    val_proposal_score: float = 0.8  # test proposals kept from this score
    jitter: list[float] = field(default_factory=lambda: [1.0, 1.25])  # train short side = crop x U(jitter)
    loss: str = "bce"  # bce (sigmoid multi-label) or ce (softmax cross entropy, as the paper mentions)
    fps: int = 30  # frame rate of the extracted frames
    capacity: int = 50  # detections kept per keyframe by the evaluator (the official cap; 0: all)

    def __post_init__(self):
        if self.loss not in ("bce", "ce"):
            raise ConfigError(f"ava.loss must be 'bce' or 'ce', got {self.loss!r}")
        if len(self.jitter) != 2 or not 0 < self.jitter[0] <= self.jitter[1]:
            raise ConfigError(f"ava.jitter must be [low, high] with 0 < low <= high, got {self.jitter}")
        check_range("ava.train_proposal_score", self.train_proposal_score, 0, 1)
        check_range("ava.val_proposal_score", self.val_proposal_score, 0, 1)
        at_least("ava.fps", self.fps, 1)
        at_least("ava.capacity", self.capacity, 0)
