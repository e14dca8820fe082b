"""What defines a training run: `TrainConfig` and the names its fields may take.

Plain data without TensorFlow, so that commands can define their flags from it (cli.py) before
TensorFlow loads. The run folder stores it as config.json (runs.py).
"""

from __future__ import annotations

import dataclasses

MODELS = ("cmri2spec", "lip2audspec")  # the paper's method, the baseline of Table 2
JIT_CHOICES = {"auto": "auto", "on": True, "off": False}  # --jit values -> Keras's jit_compile
STRATEGIES = ("default", "mirrored", "multi_worker")  # tf.distribute strategies (distribute.py)
RECIPE_NAMES = ("paper", "fast")  # how the networks are optimized (recipes.py)
PAIRINGS = ("word", "time")  # what an example is: a word's cine and windows, or a clip (clips.py)


@dataclasses.dataclass
class TrainConfig:
  """Everything that defines a run. Defaults are the paper's (Sec. 3.2)."""

  data_dir: str
  model_dir: str
  epochs: int = 20
  batch_size: int = 8
  split: str = "loso"
  fold: int = 0
  split_seed: int = 0
  selection_subjects: int = 0  # training subjects set aside to choose the epoch on (0: none)
  seed: int = 0
  model: str = "cmri2spec"
  precision: str = "float32"
  strategy: str = "default"
  jit: str = "auto"
  pair_disentangle: bool = True
  gan: bool = True
  beta: float = 0.5
  lam: float = 0.5
  translator_lr: float = 1e-3
  discriminator_lr: float = 1e-4
  adam_beta_1: float = 0.5
  recipe: str = "paper"  # how the networks are optimized (recipes.py): "paper" or "fast"
  pairing: str = "word"  # "word": the paper's protocol; "time": clips of whole recordings
  clip_hop_s: float = 0.25  # --pairing=time: a clip starts every this many seconds
  same_word_share: float = 0.5
  shift_px: float = 0.0  # training MRI moved in-plane by up to this many pixels (0: the paper's)
  pairs_per_epoch: int | None = None
  val_window_stride: int = 1
  cache_dir: str | None = None
  image_every: int = 1
  audio_every: int = 5
  n_images: int = 3
  vocoder: str | None = None  # TensorBoard audio through this vocoder folder (Griffin-Lim: None)
  verbose: int = 1
  deterministic: bool = False
  phantom: bool = False
  phantom_ageese: int = 43
  phantom_asouk: int = 20
