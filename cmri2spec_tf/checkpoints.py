"""Training state in model_dir: per-epoch checkpoints, the best held-out model, and resume.

  model_dir/checkpoints/epoch-0003.weights.h5   encoder, decoder, discriminator, both optimizers
                                                (moments, step counts, loss scales)
  model_dir/checkpoints/state.json              {"epoch": 3, "weights": "epoch-0003.weights.h5"}
  model_dir/best.weights.h5, best.json          lowest held-out L1 so far
Every file is written under a temporary name and renamed; state.json is updated only after its
weights file is complete, and the two newest epoch files are kept, so a run killed at any moment
resumes from the last finished epoch.
"""

from __future__ import annotations

import json
import math
import os

import keras
from absl import logging

from cmri2spec_tf import atomic

KEEP_EPOCHS = 2


def checkpoint_dir(model_dir: str) -> str:
  return os.path.join(model_dir, "checkpoints")


def save_weights(model: keras.Model, path: str) -> None:
  with atomic.atomic_path(path, suffix=".weights.h5") as tmp:
    model.save_weights(tmp)


class UnreadableWeights(OSError):
  """A weights file that exists but cannot be loaded (truncated, corrupt, another model's)."""


def load_weights(model: keras.Model, path: str) -> None:
  """model.load_weights with an error that names the file and says what to do."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: weights file not found")
  try:
    model.load_weights(path)
  except Exception as e:  # h5py, Keras and shape errors alike
    raise UnreadableWeights(f"{path}: unreadable weights file ({type(e).__name__}: {e}); "
                            "train again or pick other weights (--weights=last|best)") from e


def read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def restore_latest(model: keras.Model, model_dir: str) -> int:
  """Loads the newest loadable epoch checkpoint; returns the number of finished epochs (0: none)."""
  folder = checkpoint_dir(model_dir)
  state = read_json(os.path.join(folder, "state.json"))
  if not state:
    return 0
  candidates = sorted((f for f in os.listdir(folder) if f.startswith("epoch-")
                       and f.endswith(".weights.h5")), reverse=True)
  candidates = [f for f in candidates if f <= state["weights"]]
  for name in candidates:
    try:
      model.load_weights(os.path.join(folder, name))
    except Exception as e:  # truncated or corrupt file
      logging.warning("checkpoint %s unreadable (%s); trying the one before", name, e)
      continue
    return int(name[len("epoch-"):-len(".weights.h5")])
  logging.warning("no loadable checkpoint in %s; starting from scratch", folder)
  return 0


def remove_stale_temporaries(model_dir: str) -> None:
  """Deletes the temporaries of writes a kill interrupted (the finished files are intact).
  Only for the process that writes model_dir, when it starts."""
  for folder in (model_dir, checkpoint_dir(model_dir)):
    for name in atomic.remove_stale_temporaries(folder):
      logging.warning("removed %s, left in %s by a write that was killed", name, folder)


class EpochCheckpoint(keras.callbacks.Callback):
  """Saves every epoch atomically and keeps the weights with the best held-out L1 (`val_l1`)."""

  def __init__(self, model_dir: str, monitor: str = "val_l1"):
    super().__init__()
    self.model_dir, self.monitor = model_dir, monitor
    best = read_json(os.path.join(model_dir, "best.json")) or {}
    self.best = best.get(monitor, float("inf"))

  def on_epoch_end(self, epoch, logs=None):
    finished = epoch + 1
    if not all(math.isfinite(v) for v in (logs or {}).values() if isinstance(v, (int, float))):
      logging.error("epoch %d ended with a non-finite loss %s: not saved; the last good "
                    "checkpoint stays the latest", finished, logs)
      return
    folder = checkpoint_dir(self.model_dir)
    name = f"epoch-{finished:04d}.weights.h5"
    save_weights(self.model, os.path.join(folder, name))
    atomic.write_text(os.path.join(folder, "state.json"),
                      json.dumps({"epoch": finished, "weights": name}))
    for old in sorted(f for f in os.listdir(folder) if f.startswith("epoch-"))[:-KEEP_EPOCHS]:
      os.remove(os.path.join(folder, old))
    value = (logs or {}).get(self.monitor)
    if value is not None and value < self.best:
      self.best = float(value)
      save_weights(self.model, os.path.join(self.model_dir, "best.weights.h5"))
      atomic.write_text(os.path.join(self.model_dir, "best.json"),
                        json.dumps({"epoch": finished, self.monitor: self.best}))
