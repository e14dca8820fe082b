"""One training run on one fold: data -> pairs -> trainer -> checkpoints, TensorBoard, summary.

`train.py` maps absl flags onto `TrainConfig` and calls `run`; the ablation runner does the same
for each row and fold. Everything a run writes goes under `model_dir`:
  flags.txt (resolved flags, written by train.py), config.json, spec_params.json (the target
  normalization, needed to turn predictions back into dB and sound), checkpoints/, best.weights.h5,
  best.json, logs/ (TensorBoard), summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from cmri2spec_tf import atomic, callbacks, checkpoints, distribute
from cmri2spec_tf.data import dataset as dataset_lib
from cmri2spec_tf.data import pairs, phantom, splits
from cmri2spec_tf.data.manifest import MANIFEST_NAME
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.trainer import build_trainer

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


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
  same_word_share: float = 0.5
  pairs_per_epoch: int | None = None
  val_window_stride: int = 1
  cache_dir: str | None = None
  image_every: int = 1
  audio_every: int = 5
  n_images: int = 3
  verbose: int = 1
  deterministic: bool = False
  phantom_ageese: int = 43
  phantom_asouk: int = 20


def ensure_data(config: TrainConfig) -> None:
  """Writes the phantom into data_dir when the folder is missing or empty (first use)."""
  folder = config.data_dir
  if os.path.isdir(folder) and os.listdir(folder):
    return
  if config.strategy == "multi_worker":
    raise ValueError(f"{folder} is empty: a multi-worker run reads an existing dataset; write "
                     "the phantom first (python -m cmri2spec_tf.phantom --out_dir=...)")
  print(f"{folder} is empty: writing the phantom ({config.phantom_ageese} 'ageese', "
        f"{config.phantom_asouk} 'asouk' subjects, seed {config.seed})")
  phantom.generate(folder, config.phantom_ageese, config.phantom_asouk, seed=config.seed,
                   workers=os.cpu_count() or 1)


def mean_spectrogram_l1(train: dataset_lib.ArrayDataset, heldout: dataset_lib.ArrayDataset,
                        window_stride: int = 1) -> float:
  """L1 of always predicting the mean training spectrogram: the bar a model must clear.

  Measured on the same held-out windows as the monitored `val_l1` (every window_stride-th).
  """
  mean = train.spectrograms.astype(np.float32).mean(axis=(0, 1))
  targets = heldout.spectrograms[:, ::window_stride].astype(np.float32)
  return float(np.abs(targets - mean).mean())


def run(config: TrainConfig) -> dict:
  """Trains (or resumes) one fold; returns the summary also written to summary.json.

  Under a multi-worker strategy only the chief writes config.model_dir; the others write their
  own copy (distribute.write_dir) and resume from the chief's checkpoints.
  """
  strategy = distribute.make_strategy(config.strategy)  # first: it may start the cluster
  distribute.check_batch_size(strategy, config.batch_size)
  resume_dir = config.model_dir
  config = dataclasses.replace(config, model_dir=distribute.write_dir(config.model_dir, strategy))
  os.makedirs(config.model_dir, exist_ok=True)
  checkpoints.remove_stale_temporaries(config.model_dir)
  keras.utils.set_random_seed(config.seed)  # Python, NumPy and TensorFlow
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  keras.config.set_dtype_policy(config.precision)
  note = slow_precision_note(config.precision, bool(tf.config.list_physical_devices("GPU")),
                             cpu_flags())
  if note:
    print(f"warning: {note}", file=sys.stderr)
  ensure_data(config)
  data = dataset_lib.load_dataset(config.data_dir, SpecParams(), config.cache_dir,
                                  verbose=config.verbose > 0)
  train, heldout = split_fold(data, config)
  atomic.write_text(os.path.join(config.model_dir, "config.json"),
                    json.dumps(dataclasses.asdict(config), indent=2))
  atomic.write_text(os.path.join(config.model_dir, "spec_params.json"), data.params.to_json())

  with strategy.scope():  # models and both optimizers (notes: built inside the scope)
    model = build_model(config)
    done = checkpoints.restore_latest(model, resume_dir)
    if not done:
      init_output_bias(model, train)
  baseline = mean_spectrogram_l1(train, heldout, config.val_window_stride)
  print(f"fold {config.fold} ({config.split}): {len(train)} training subjects, held out "
        f"{', '.join(heldout.subject_ids)}; mean-spectrogram L1 on them {baseline:.4f}")
  if done:
    print(f"resumed after epoch {done} from {checkpoints.checkpoint_dir(config.model_dir)} "
          f"(weights fingerprint {weights_fingerprint(model):.6f}); starting epoch {done + 1}")
  if strategy.num_replicas_in_sync > 1:
    print(f"{config.strategy} strategy: {strategy.num_replicas_in_sync} replicas, "
          f"{config.batch_size // strategy.num_replicas_in_sync} pairs each per step")
  if done < config.epochs:
    with strategy.scope():
      _fit(model, config, train, heldout, done)
    if model.stop_training:  # TerminateOnNaN
      kept = checkpoints.restore_latest(model, config.model_dir)
      raise TrainingDiverged(
          f"training stopped: a loss became NaN or infinite in epoch {kept + 1}; the last good "
          f"checkpoint (epoch {kept}) is kept in {checkpoints.checkpoint_dir(config.model_dir)}. "
          "Lower the learning rates or check the data, then run again to resume from it.")
  best = checkpoints.read_json(os.path.join(config.model_dir, "best.json")) or {}
  summary = {"fold": config.fold, "heldout_subjects": list(heldout.subject_ids),
             "epochs": config.epochs, "best_epoch": best.get("epoch"),
             "heldout_l1": best.get("val_l1"), "mean_spectrogram_l1": baseline}
  atomic.write_text(os.path.join(config.model_dir, "summary.json"), json.dumps(summary, indent=2))
  print(f"held-out L1 {summary['heldout_l1']:.4f} (best epoch {summary['best_epoch']}) vs "
        f"mean-spectrogram baseline {baseline:.4f}")
  return summary


def cpuinfo(field: str) -> str:
  """The first value of `field` in /proc/cpuinfo ("model name", "flags"); "" where there is none."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith(field))
  except (OSError, StopIteration):
    return ""


def cpu_flags() -> set[str]:
  """The CPU's feature flags (empty where /proc/cpuinfo has none)."""
  return set(cpuinfo("flags").split())


def slow_precision_note(precision: str, has_gpu: bool, flags: set[str]) -> str | None:
  """Why a mixed policy will be slower than float32 on this machine, or None (README:
  Performance has the measurements)."""
  if has_gpu or precision == "float32":
    return None
  if precision == "mixed_float16":
    return ("mixed_float16 without a GPU: TensorFlow has no fast float16 convolutions on CPUs, "
            "so this runs many times slower than --precision=float32 (it is meant for GPUs)")
  if "amx_bf16" not in flags:
    return ("mixed_bfloat16 on a CPU without AMX: we measured training 1.7x and inference 2x "
            "slower than --precision=float32 on such a CPU; prefer float32 here")
  return None


class TrainingDiverged(RuntimeError):
  """The loss became NaN or infinite; nothing of that epoch was saved."""


def split_fold(data: dataset_lib.ArrayDataset, config: TrainConfig):
  """(training, held-out) subsets of the config's fold; the folds depend on split_seed only."""
  folds = splits.make_folds(data.subject_ids, data.words, config.split, config.split_seed)
  if not 0 <= config.fold < len(folds):
    raise ValueError(f"fold {config.fold} does not exist: split {config.split!r} has "
                     f"{len(folds)} folds (0-{len(folds) - 1})")
  fold = folds[config.fold]
  return data.subset(fold.train), data.subset(fold.test)


def build_model(config: TrainConfig):
  """The compiled trainer of the config's method (under the current dtype policy)."""
  return build_trainer(config.pair_disentangle, config.gan, config.beta, config.lam, config.seed,
                       config.translator_lr, config.discriminator_lr, config.adam_beta_1,
                       model=config.model, jit=config.jit)


def load_config(model_dir: str) -> TrainConfig:
  """The TrainConfig a run wrote to model_dir/config.json."""
  path = os.path.join(model_dir, "config.json")
  stored = checkpoints.read_json(path)
  if stored is None:
    raise FileNotFoundError(f"{path}: missing or unreadable; is {model_dir} a training run's "
                            "model_dir?")
  known = {f.name for f in dataclasses.fields(TrainConfig)}
  return TrainConfig(**{k: v for k, v in stored.items() if k in known})


def init_output_bias(model, train: dataset_lib.ArrayDataset) -> None:
  """Starts the sigmoid output at the training targets' mean level instead of 0.5.

  A standard initialisation (the data prior in the last bias): without it the first few hundred
  Adam steps on a CPU only move the output from 0.5 towards the noise floor of the spectrograms.
  """
  mean = float(np.clip(train.spectrograms.astype(np.float32).mean(), 1e-3, 1 - 1e-3))
  bias = model.output_layer().bias
  bias.assign(np.full(bias.shape, np.log(mean / (1 - mean)), dtype=np.float32))


def _fit(model, config, train, heldout, done):
  train_pairs = pairs.pairs_dataset(train, config.batch_size, config.same_word_share,
                                    config.seed, first_epoch=done,
                                    pairs_per_epoch=config.pairs_per_epoch)
  heldout_recordings = pairs.recordings_dataset(heldout, batch_size=8,
                                                window_stride=config.val_window_stride)
  logs = callbacks.tensorboard_dirs(config.model_dir)
  images = callbacks.held_out_examples(heldout, config.n_images)
  model.fit(train_pairs, epochs=config.epochs, initial_epoch=done,
            validation_data=heldout_recordings, verbose=config.verbose, shuffle=False,
            callbacks=[keras.callbacks.TensorBoard(logs["keras"], write_graph=False),
                       callbacks.HeldOutImages(logs["heldout"], *images, train.params,
                                               every=config.image_every,
                                               audio_every=config.audio_every),
                       checkpoints.EpochCheckpoint(config.model_dir),
                       keras.callbacks.TerminateOnNaN()])


def weights_fingerprint(model: keras.Model) -> float:
  """Sum of |w| over every weight of the method's networks: equal weights, equal sum."""
  return float(sum(np.abs(w).sum() for m in model.networks for w in m.get_weights()))
