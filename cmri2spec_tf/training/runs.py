"""A run: its definition (`TrainConfig`) and its folder, the one place that knows the folder's files.

  model_dir/flags.txt                          the resolved command-line flags (train)
  model_dir/config.json                        the TrainConfig
  model_dir/spec_params.json                   the target normalization (data/spectrogram.py):
                                               needed to turn predictions into dB and sound
  model_dir/checkpoints/epoch-0003.weights.h5  the whole trainer after an epoch (networks, both
                                               optimizers: moments, step counts, loss scales);
                                               the two newest are kept
  model_dir/checkpoints/state.json             the checkpoints' index: {"epoch", "weights"}
  model_dir/best.weights.h5, best.json         the epoch with the lowest held-out L1 so far
  model_dir/logs/                              TensorBoard (Keras's train/ and validation/,
                                               and heldout/ for images and audio)
  model_dir/summary.json                       the training run's result
  model_dir/translator.keras                   the translator (MRI -> spectrogram, w = mu) of the
                                               last epoch in float32, as a plain Keras model:
                                               keras.saving.load_model opens it without this
                                               package
  model_dir/evaluation.json, evaluation.csv,   the evaluation's report, per-subject rows and one
  model_dir/predictions.npz                    spectrogram per held-out recording and method

Every file is written under a temporary name and renamed (base/atomic.py). Commands and libraries
read and write a run only through these functions; loading a finished run (`load_trainer`,
`load_translator`) needs the models and this module, nothing of training or evaluation.

Checkpointing (`EpochCheckpoint`, `restore_latest`): an epoch's weights file is complete before
the index (state.json) points at it, and the two newest epoch files are kept, so a run killed at
any moment resumes from the last finished epoch; a truncated newest checkpoint falls back to the
one before it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import keras
import numpy as np
from absl import logging

from cmri2spec_tf.base import atomic
from cmri2spec_tf.training.config import TrainConfig
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.training.trainer import build_trainer

FLAGS_TXT, CONFIG_JSON, SPEC_PARAMS_JSON = "flags.txt", "config.json", "spec_params.json"
CHECKPOINTS, STATE_JSON = "checkpoints", "state.json"
BEST_WEIGHTS, BEST_JSON = "best.weights.h5", "best.json"
LOGS, SUMMARY_JSON, TRANSLATOR_KERAS = "logs", "summary.json", "translator.keras"
REPORT_HTML = "report.html"  # the listening report (evaluation/listening.py)
# what the model learns (evaluation/probes.py)
PROBES_JSON, LATENT_PNG = "probes.json", "latent.png"
EVALUATION_JSON, EVALUATION_CSV, PREDICTIONS_NPZ = ("evaluation.json", "evaluation.csv",
                                                    "predictions.npz")
WEIGHTS_CHOICES = ("best", "last")
KEEP_EPOCHS = 2


class NotARun(FileNotFoundError):
  """A folder that lacks a run's file (or holds an unreadable one)."""


class UnreadableWeights(OSError):
  """A weights file that exists but cannot be loaded (truncated, corrupt, another model's)."""


# ------------------------------------------------------------------ plain files
def path(model_dir: str, name: str) -> str:
  """The path of one of the run's files (a name above)."""
  return os.path.join(model_dir, name)


def read_json(file: str):
  """The JSON in `file`, or None when it is missing or unreadable."""
  try:
    with open(file) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def write_json(model_dir: str, name: str, value) -> None:
  atomic.write_text(path(model_dir, name), json.dumps(value, indent=2))


def write_flags(model_dir: str, text: str) -> None:
  atomic.write_text(path(model_dir, FLAGS_TXT), text)


def write_config(config: TrainConfig) -> None:
  write_json(config.model_dir, CONFIG_JSON, dataclasses.asdict(config))


def load_config(model_dir: str) -> TrainConfig:
  """The TrainConfig a run wrote to its config.json (unknown keys of other versions ignored)."""
  stored = read_json(path(model_dir, CONFIG_JSON))
  if not isinstance(stored, dict):
    raise NotARun(f"{path(model_dir, CONFIG_JSON)}: missing or unreadable; is {model_dir} a "
                  "training run's model_dir?")
  known = {f.name for f in dataclasses.fields(TrainConfig)}
  return TrainConfig(**{k: v for k, v in stored.items() if k in known})


def write_spec_params(model_dir: str, params: SpecParams) -> None:
  atomic.write_text(path(model_dir, SPEC_PARAMS_JSON), params.to_json())


def load_spec_params(model_dir: str) -> SpecParams:
  file = path(model_dir, SPEC_PARAMS_JSON)
  try:
    with open(file) as f:
      return SpecParams.from_json(f.read())
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise NotARun(f"{file}: missing or unreadable ({e}); is {model_dir} a training run's "
                  "model_dir?") from e


def write_summary(model_dir: str, summary: dict) -> None:
  write_json(model_dir, SUMMARY_JSON, summary)


def tensorboard_dirs(model_dir: str) -> dict[str, str]:
  """Keras's TensorBoard callback writes under "keras", our extras (experiments/callbacks.py)
  "heldout"."""
  logs = path(model_dir, LOGS)
  return {"keras": logs, "heldout": os.path.join(logs, "heldout")}


# ------------------------------------------------------------------ weights and checkpoints
def checkpoint_dir(model_dir: str) -> str:
  return path(model_dir, CHECKPOINTS)


def epoch_weights_name(epoch: int) -> str:
  return f"epoch-{epoch:04d}.weights.h5"


def epoch_of(name: str) -> int:
  return int(name[len("epoch-"):-len(".weights.h5")])


def save_weights(model: keras.Model, file: str) -> None:
  with atomic.atomic_path(file, suffix=".weights.h5") as tmp:
    model.save_weights(tmp)


def load_weights(model: keras.Model, file: str) -> None:
  """model.load_weights with an error that names the file and says what to do."""
  if not os.path.isfile(file):
    raise FileNotFoundError(f"{file}: weights file not found")
  try:
    model.load_weights(file)
  except Exception as e:  # h5py, Keras and shape errors alike
    raise UnreadableWeights(f"{file}: unreadable weights file ({type(e).__name__}: {e}); "
                            "train again or pick other weights (--weights=last|best)") from e


def read_state(model_dir: str) -> dict | None:
  """The checkpoints' index {"epoch": N, "weights": NAME}, or None before the first epoch."""
  return read_json(os.path.join(checkpoint_dir(model_dir), STATE_JSON))


def save_epoch(model: keras.Model, model_dir: str, epoch: int) -> None:
  """The epoch's checkpoint, then the index pointing at it; keeps the KEEP_EPOCHS newest."""
  folder = checkpoint_dir(model_dir)
  name = epoch_weights_name(epoch)
  save_weights(model, os.path.join(folder, name))
  atomic.write_text(os.path.join(folder, STATE_JSON), json.dumps({"epoch": epoch, "weights": name}))
  for old in sorted(f for f in os.listdir(folder) if f.startswith("epoch-"))[:-KEEP_EPOCHS]:
    os.remove(os.path.join(folder, old))


def epoch_checkpoints(model_dir: str) -> list[str]:
  """The epoch checkpoint files up to the index's, newest first ([] before the first epoch)."""
  state = read_state(model_dir)
  if not state:
    return []
  folder = checkpoint_dir(model_dir)
  names = sorted((f for f in os.listdir(folder) if f.startswith("epoch-")
                  and f.endswith(".weights.h5") and f <= state["weights"]), reverse=True)
  return [os.path.join(folder, name) for name in names]


def read_best(model_dir: str) -> dict:
  """{"epoch": N, MONITOR: value} of the best epoch so far ({} before the first)."""
  return read_json(path(model_dir, BEST_JSON)) or {}


def save_best(model: keras.Model, model_dir: str, epoch: int, monitor: str, value: float) -> None:
  save_weights(model, path(model_dir, BEST_WEIGHTS))
  atomic.write_text(path(model_dir, BEST_JSON), json.dumps({"epoch": epoch, monitor: value}))


def weights_file(model_dir: str, which: str) -> tuple[str, int | None]:
  """(path, epoch) of model_dir's best or last weights; a clear error when there are none."""
  if which == "best":
    best, file = read_best(model_dir), path(model_dir, BEST_WEIGHTS)
    if best and os.path.exists(file):
      return file, best.get("epoch")
    raise FileNotFoundError(f"{model_dir} has no {BEST_WEIGHTS} yet: train at least one epoch")
  if which == "last":
    state = read_state(model_dir)
    if state:
      return os.path.join(checkpoint_dir(model_dir), state["weights"]), state["epoch"]
    raise FileNotFoundError(f"{model_dir} has no epoch checkpoint yet")
  raise ValueError(f"weights must be one of {WEIGHTS_CHOICES}, got {which!r}")


def remove_stale_temporaries(model_dir: str) -> None:
  """Deletes the temporaries of writes a kill interrupted (the finished files are intact),
  saying so. Only for the process that writes model_dir, when it starts."""
  for folder in (model_dir, checkpoint_dir(model_dir)):
    for name in atomic.remove_stale_temporaries(folder):
      logging.warning("removed %s, left in %s by a write that was killed", name, folder)


def restore_latest(model: keras.Model, model_dir: str) -> int:
  """Loads the newest loadable epoch checkpoint; returns the number of finished epochs (0: none)."""
  candidates = epoch_checkpoints(model_dir)
  for file in candidates:
    try:
      model.load_weights(file)
    except Exception as e:  # truncated or corrupt file
      logging.warning("checkpoint %s unreadable (%s); trying the one before",
                      os.path.basename(file), e)
      continue
    return epoch_of(os.path.basename(file))
  if read_state(model_dir):
    logging.warning("no loadable checkpoint in %s; starting from scratch",
                    checkpoint_dir(model_dir))
  return 0


class EpochCheckpoint(keras.callbacks.Callback):
  """Saves every epoch atomically and keeps the weights with the best held-out L1 (`val_l1`)."""

  def __init__(self, model_dir: str, monitor: str = "val_l1"):
    super().__init__()
    self.model_dir, self.monitor = model_dir, monitor
    self.best = read_best(model_dir).get(monitor, float("inf"))

  def on_epoch_end(self, epoch, logs=None):
    finished = epoch + 1
    if not all(math.isfinite(v) for v in (logs or {}).values() if isinstance(v, (int, float))):
      logging.error("epoch %d ended with a non-finite loss %s: not saved; the last good "
                    "checkpoint stays the latest", finished, logs)
      return
    save_epoch(self.model, self.model_dir, finished)
    value = (logs or {}).get(self.monitor)
    if value is not None and value < self.best:
      self.best = float(value)
      save_best(self.model, self.model_dir, finished, self.monitor, self.best)


# ------------------------------------------------------------------ models of a run
def build_model(config: TrainConfig, precision: str | None = None):
  """The compiled trainer the config describes, built under `precision` (default: the run's)."""
  return build_trainer(model=config.model, pair_disentangle=config.pair_disentangle,
                       gan=config.gan, beta=config.beta, lam=config.lam, seed=config.seed,
                       translator_lr=config.translator_lr,
                       discriminator_lr=config.discriminator_lr,
                       adam_beta_1=config.adam_beta_1, jit=config.jit,
                       precision=precision or config.precision)


@dataclasses.dataclass(frozen=True)
class LoadedRun:
  """A finished run's trainer (at the run's precision) with the weights it was given."""

  trainer: object
  config: TrainConfig
  weights_path: str
  epoch: int | None


def load_trainer(model_dir: str, weights: str = "last") -> LoadedRun:
  """The run's trainer with its best or last weights."""
  config = load_config(model_dir)
  weights_path, epoch = weights_file(model_dir, weights)
  trainer = build_model(config)
  load_weights(trainer, weights_path)
  return LoadedRun(trainer, config, weights_path, epoch)


def translator_at(trainer, config: TrainConfig, precision: str | None):
  """The trainer's inference model, rebuilt under `precision` with the same weights when that
  differs from the run's (the weights are float32 under every policy)."""
  translator = trainer.inference_model()
  if not precision or precision == config.precision:
    return translator
  rebuilt = build_model(config, precision).inference_model()
  rebuilt.set_weights(translator.get_weights())
  return rebuilt


def load_translator(model_dir: str, weights: str = "best", precision: str | None = None):
  """(inference model MRI -> spectrogram with the run's weights, SpecParams, config).

  `precision`: the run's own by default; another one (export's float32) gets a model built
  under it with the trained weights copied over (the weights are float32 under every policy).
  """
  params = load_spec_params(model_dir)
  run = load_trainer(model_dir, weights)
  return translator_at(run.trainer, run.config, precision), params, run.config


def save_translator(trainer, config: TrainConfig) -> str:
  """The trainer's translator in float32 as translator.keras (atomically); returns its path."""
  translator = translator_at(trainer, config, "float32")
  file = path(config.model_dir, TRANSLATOR_KERAS)
  with atomic.atomic_path(file, suffix=".keras") as tmp:
    translator.save(tmp)
  return file


# ------------------------------------------------------------------ evaluation outputs
def write_evaluation(model_dir: str, report: dict, per_subject_csv: str, subject_ids,
                     predictions: dict[str, np.ndarray]) -> None:
  """evaluation.json, evaluation.csv and predictions.npz (float16), each atomically."""
  write_json(model_dir, EVALUATION_JSON, report)
  atomic.write_text(path(model_dir, EVALUATION_CSV), per_subject_csv)
  with atomic.atomic_path(path(model_dir, PREDICTIONS_NPZ), suffix=".npz") as tmp:
    np.savez(tmp, subject_ids=np.array(subject_ids),
             **{name: p.astype(np.float16) for name, p in predictions.items()})


def read_evaluation(model_dir: str) -> dict | None:
  """The evaluation report, or None when the run has none (yet)."""
  return read_json(path(model_dir, EVALUATION_JSON))


def read_predictions(model_dir: str) -> dict[str, np.ndarray]:
  """{method: float32 [R, 64, 64]} and "subject_ids" of the evaluation's predictions.npz."""
  with np.load(path(model_dir, PREDICTIONS_NPZ)) as stored:
    return {name: stored[name] if name == "subject_ids" else stored[name].astype(np.float32)
            for name in stored.files}
