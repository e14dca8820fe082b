"""A run: its definition (`TrainConfig`) and its folder, the one place that knows the folder's files.

  model_dir/flags.txt                          the resolved command-line flags (train)
  model_dir/config.json                        the TrainConfig
  model_dir/spec_params.json                   the target normalization (data/spectrogram.py):
                                               needed to turn predictions into dB and sound
  model_dir/checkpoints/epoch-0003.weights.h5  the whole trainer after an epoch (networks, both
                                               optimizers: moments, step counts, loss scales);
                                               the two newest are kept
  model_dir/checkpoints/state.json             the checkpoints' index: {"epoch", "weights"}
  model_dir/best.weights.h5, best.json         the epoch with the lowest L1 so far on the
                                               selection subjects (--selection_subjects), or
                                               on the held-out ones without them
  model_dir/logs/                              TensorBoard (Keras's train/ and validation/,
                                               and heldout/ for images and audio)
  model_dir/summary.json                       the training run's result
  model_dir/translator.keras                   the translator (MRI -> spectrogram, w = mu) of the
                                               last epoch in float32, as a plain Keras model:
                                               keras.saving.load_model opens it without this
                                               package
  model_dir/evaluation.json, evaluation.csv,   the evaluation's report, per-subject rows and one
  model_dir/predictions.npz                    spectrogram per held-out recording and method
  model_dir/explain/<subject>.png              attribution strips (explain), for report.html
  model_dir/writer.lock                        the training process's lock (see WriterLock)

Every file is written under a temporary name and renamed (base/atomic.py). Commands and libraries
read and write a run only through these functions; loading a finished run (`load_trainer`,
`load_translator`) needs the models and this module, nothing of training or evaluation.

Checkpointing (`EpochCheckpoint`, `restore_latest`): an epoch's weights file is complete before
the index (state.json) points at it, and the two newest epoch files are kept, so a run killed at
any moment resumes from the last finished epoch; a truncated newest checkpoint falls back to the
one before it. A checkpoint that reads but does not fit the model (`WeightsMismatch`: another
network, another precision's optimizers) is an error, never skipped and never loaded in part.

Identity (`check_definition`, `claim`): config.json is the run's definition. Training into a
folder that holds a run compares the new definition with it; only the settings in CONTINUATION
may differ, any other difference is refused before anything is written. `--overwrite` moves the
old folder aside (`<model_dir>.old-<time>`) and starts anew. One process writes a run folder at a
time: `WriterLock`, an OS file lock on model_dir/writer.lock that dies with its process.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import math
import os
import socket
import sys
import tempfile
import time
import warnings

import keras
import numpy as np
from absl import logging

from cmri2spec_tf.base import atomic
from cmri2spec_tf.base.errors import ConfigError
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
LOCK = "writer.lock"
EXPLAIN = "explain"  # attribution strips per held-out subject (evaluation/explaining.py)
# model: the run's model (the epoch chosen on its selection subjects, else the last); best: the
# epoch with the lowest L1 on the subjects that choose (the selection subjects where the run has
# them, else the held-out ones: optimistic); last: the last epoch.
WEIGHTS_CHOICES = ("model", "best", "last")
MONITORS = ("val_l1", "sel_l1")  # held-out L1, selection-subject L1 (kept with each epoch)
KEEP_EPOCHS = 2
# The settings that only continue a run: how long, how loudly, with which pictures and sounds, on
# which devices, from which cache. Every other field of TrainConfig defines what the run learns
# and must match the stored config.json to train into an existing run folder.
CONTINUATION = ("epochs", "verbose", "image_every", "audio_every", "n_images", "vocoder",
                "cache_dir", "jit", "strategy", "phantom", "phantom_ageese", "phantom_asouk")
# What a run folder may hold before its config.json is written (a start that stopped early, or
# a multi-worker run whose other workers write their own folders under workers/).
EARLY_FILES = {FLAGS_TXT, LOCK, LOGS, CHECKPOINTS, "workers"}


class NotARun(FileNotFoundError):
  """A folder that lacks a run's file (or holds an unreadable one)."""


class UnreadableWeights(OSError):
  """A weights file that exists but cannot be read (truncated, corrupt)."""


class WeightsMismatch(OSError):
  """A readable weights file whose variables do not fit the model (names, shapes, counts)."""


class RunMismatch(ConfigError):
  """Training into a folder that holds a run with another definition (exit 2, nothing written)."""


class RunFolderBusy(ConfigError):
  """Another process is writing the run folder (exit 2, nothing written)."""


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


def explain_strip(model_dir: str, subject_id: str) -> str:
  """Where `explain` leaves a held-out subject's attribution strip (report.html shows it)."""
  return os.path.join(model_dir, EXPLAIN, f"{subject_id}.png")


def write_summary(model_dir: str, summary: dict) -> None:
  write_json(model_dir, SUMMARY_JSON, summary)


def read_summary(model_dir: str) -> dict | None:
  """summary.json of a run that finished training, or None."""
  summary = read_json(path(model_dir, SUMMARY_JSON))
  return summary if isinstance(summary, dict) else None


def tensorboard_dirs(model_dir: str) -> dict[str, str]:
  """Keras's TensorBoard callback writes under "keras", our extras (experiments/callbacks.py)
  "heldout"."""
  logs = path(model_dir, LOGS)
  return {"keras": logs, "heldout": os.path.join(logs, "heldout")}


# ------------------------------------------------------------------ identity and the writer
def _same_setting(name: str, stored, new) -> bool:
  if name == "data_dir" and isinstance(stored, str) and isinstance(new, str):
    return (os.path.normpath(stored) == os.path.normpath(new)
            or os.path.realpath(stored) == os.path.realpath(new))
  if isinstance(stored, (int, float)) and isinstance(new, (int, float)) \
      and not isinstance(stored, bool) and not isinstance(new, bool):
    return float(stored) == float(new)
  return stored == new


def definition_changes(model_dir: str, config: TrainConfig) -> list[str]:
  """"name: A there, B here" for each defining setting in which `config` differs from the run
  stored in model_dir ([] when there is none, or it matches). A setting an older run's
  config.json lacks counts as that run's default."""
  stored = read_json(path(model_dir, CONFIG_JSON))
  if not isinstance(stored, dict):
    return []
  new, changes = dataclasses.asdict(config), []
  for field in dataclasses.fields(TrainConfig):
    if field.name in CONTINUATION or field.name == "model_dir":
      continue
    old = stored.get(field.name, field.default)
    if not _same_setting(field.name, old, new[field.name]):
      changes.append(f"{field.name}: {old!r} there, {new[field.name]!r} here")
  return changes


def check_definition(model_dir: str, config: TrainConfig, overwrite: bool = False) -> None:
  """Refuses (RunMismatch, ConfigError) to train `config` into a folder holding another run or
  files that are not a run's; reads only. With `overwrite` anything there is fine: `claim`
  moves it aside."""
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise RunMismatch(f"--model_dir={model_dir} is a file, not a folder")
  if overwrite or not os.path.isdir(model_dir):
    return
  stored = path(model_dir, CONFIG_JSON)
  if os.path.exists(stored) and not isinstance(read_json(stored), dict):
    raise RunMismatch(f"{stored} is unreadable, so this run's settings cannot be compared: "
                      "restore it, train into another --model_dir, or add --overwrite to move "
                      "the folder aside")
  changes = definition_changes(model_dir, config)
  if changes:
    raise RunMismatch(
        f"--model_dir={model_dir} holds a run with other settings ({'; '.join(changes)}): "
        "resume it with its own settings, train into another --model_dir, or add --overwrite "
        f"to start anew (the old run is moved to {model_dir.rstrip('/')}.old-<time>)")
  entries = set(os.listdir(model_dir))
  if entries and not os.path.exists(path(model_dir, CONFIG_JSON)) and entries - EARLY_FILES:
    shown = ", ".join(sorted(entries - EARLY_FILES)[:5])
    raise RunMismatch(f"--model_dir={model_dir} holds files that are not a training run's "
                      f"({shown}): train into a new or empty folder, or add --overwrite to move "
                      "them aside")


def move_aside(model_dir: str) -> str:
  """Renames model_dir to `<model_dir>.old-<YYYYmmdd-HHMMSS>` (never deleting); returns the new
  name."""
  base = f"{os.path.normpath(model_dir)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
  target, n = base, 1
  while os.path.exists(target):
    n += 1
    target = f"{base}-{n}"
  os.rename(model_dir, target)
  return target


class WriterLock:
  """An exclusive OS lock (flock) on model_dir/writer.lock, held while a process writes the run.

  The kernel drops it when the process ends, however it ends, so a killed run leaves no stale
  lock; the file keeps the last holder's host, pid and start time, which a refused process names.
  On NFS, Linux maps flock onto NFS byte-range locks: it holds across machines where the server
  supports locking (NFSv4, NFSv3 with lockd). Where the filesystem cannot lock at all, the run
  goes on with a warning.
  """

  def __init__(self, model_dir: str):
    self.file, self.fd = path(model_dir, LOCK), None

  def acquire(self) -> "WriterLock":
    os.makedirs(os.path.dirname(self.file), exist_ok=True)
    fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 4096, 0).decode(errors="replace")
      os.close(fd)
      raise RunFolderBusy(f"{os.path.dirname(self.file)} is being written by another process "
                          f"({_describe_holder(holder)}); wait for it to end, or train into "
                          "another --model_dir") from None
    except OSError as e:
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        os.close(fd)
        raise
      logging.warning("%s: this filesystem cannot lock files (%s); nothing stops a second "
                      "process from writing this run", self.file, e.strerror)
    holder = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    self.fd = fd
    return self

  def release(self) -> None:
    if self.fd is not None:
      fcntl.flock(self.fd, fcntl.LOCK_UN)
      os.close(self.fd)
      self.fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def _describe_holder(text: str) -> str:
  try:
    holder = json.loads(text)
    return f"host {holder['host']}, pid {holder['pid']}, since {holder['since']}"
  except (ValueError, KeyError, TypeError):
    return "holder unknown"


def claim(model_dir: str, overwrite: bool = False) -> WriterLock:
  """The writer's lock on model_dir (created if missing). With `overwrite`, a folder that holds
  anything is first locked (so that no one else is writing it), moved aside, and a new one made
  and locked; the line printed says where the old run went."""
  lock = WriterLock(model_dir).acquire()
  if overwrite and set(os.listdir(model_dir)) - {LOCK}:
    moved = move_aside(model_dir)
    fresh = WriterLock(model_dir).acquire()
    lock.release()
    print(f"--overwrite: moved the previous contents of {model_dir} to {moved}")
    return fresh
  return lock


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


def weight_layout(file) -> dict[str, tuple]:
  """{variable path: shape} of a Keras weights file (a path or a file object); UnreadableWeights
  when it cannot be read."""
  import h5py

  layout = {}
  try:
    with h5py.File(file, "r") as f:
      f.visititems(lambda name, item: layout.__setitem__(name, tuple(item.shape))
                   if isinstance(item, h5py.Dataset) else None)
  except Exception as e:  # truncated, not HDF5
    raise UnreadableWeights(f"{file}: unreadable weights file ({type(e).__name__}: {e})") from e
  return layout


def check_weights_fit(model: keras.Model, file: str) -> None:
  """WeightsMismatch naming the file and the first difference when the file's variables are not
  exactly those `model` would save (names, shapes, counts); UnreadableWeights when it is not
  readable at all."""
  found = weight_layout(file)
  expected = _layout_of(model)
  for name in sorted(expected.keys() | found.keys()):
    if name not in found:
      detail = f"{name} {expected[name]} of the model is not in the file"
    elif name not in expected:
      detail = f"{name} {found[name]} in the file is not in the model"
    elif found[name] != expected[name]:
      detail = f"{name} has shape {found[name]} in the file, {expected[name]} in the model"
    else:
      continue
    raise WeightsMismatch(f"{file}: weights of another model ({len(found)} variables, the model "
                          f"has {len(expected)}; first difference: {detail}); it was written by "
                          "another network, precision or version of this run's definition")


def _layout_of(model: keras.Model) -> dict[str, tuple]:
  """What model.save_weights would write, written to memory rather than to a disk that may be
  full. Keras's public save_weights takes only a path; its own H5 store takes a BytesIO, and
  where a Keras version lacks it we fall back to a temporary file."""
  import io

  try:
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="",
                           visited_saveables=set())
    store.close()
    buffer.seek(0)
    return weight_layout(buffer)
  except (ImportError, AttributeError, TypeError):
    with tempfile.TemporaryDirectory() as folder:
      mine = os.path.join(folder, "model.weights.h5")
      model.save_weights(mine)
      return weight_layout(mine)


def load_weights(model: keras.Model, file: str) -> None:
  """model.load_weights, whole or not at all: WeightsMismatch when the file does not fit the
  model (checked before loading; a partial load Keras only warns about is an error too),
  UnreadableWeights when it cannot be read; both name the file."""
  if not os.path.isfile(file):
    raise FileNotFoundError(f"{file}: weights file not found")
  check_weights_fit(model, file)
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      model.load_weights(file)
  except Exception as e:  # h5py and Keras errors on a damaged file
    raise UnreadableWeights(f"{file}: unreadable weights file ({type(e).__name__}: {e}); "
                            "train again or pick other weights (--weights=last|best)") from e
  partial = [str(w.message) for w in caught if "loading" in str(w.message).lower()]
  if partial:
    raise WeightsMismatch(f"{file}: loaded only in part ({partial[0]})")
  for w in caught:  # anything else Keras said, as it would have said it
    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def read_state(model_dir: str) -> dict | None:
  """The checkpoints' index {"epoch": N, "weights": NAME}, or None before the first epoch."""
  return read_json(os.path.join(checkpoint_dir(model_dir), STATE_JSON))


def save_epoch(model: keras.Model, model_dir: str, epoch: int, monitored: dict | None = None
               ) -> None:
  """The epoch's checkpoint, then the index pointing at it (with the epoch's `monitored`
  values, e.g. its held-out L1); keeps the KEEP_EPOCHS newest."""
  folder = checkpoint_dir(model_dir)
  name = epoch_weights_name(epoch)
  save_weights(model, os.path.join(folder, name))
  atomic.write_text(os.path.join(folder, STATE_JSON),
                    json.dumps({"epoch": epoch, "weights": name} | (monitored or {})))
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


def save_best(model: keras.Model, model_dir: str, epoch: int, monitored: dict) -> None:
  save_weights(model, path(model_dir, BEST_WEIGHTS))
  atomic.write_text(path(model_dir, BEST_JSON), json.dumps({"epoch": epoch} | monitored))


def chooses_on_selection(config: TrainConfig) -> bool:
  """Whether the run's model is the epoch chosen on selection subjects (else the last)."""
  return config.selection_subjects > 0


def weights_file(model_dir: str, which: str) -> tuple[str, int | None]:
  """(path, epoch) of model_dir's model, best or last weights (WEIGHTS_CHOICES); a clear error
  when there are none."""
  if which == "model":
    which = "best" if chooses_on_selection(load_config(model_dir)) else "last"
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
  """Loads the newest readable epoch checkpoint; returns the number of finished epochs (0: none).
  A checkpoint that reads but does not fit the model raises WeightsMismatch."""
  candidates = epoch_checkpoints(model_dir)
  for file in candidates:
    try:
      load_weights(model, file)  # WeightsMismatch (another model's file) is not caught: an error
    except UnreadableWeights as e:  # truncated or corrupt file
      logging.warning("checkpoint %s unreadable (%s); trying the one before",
                      os.path.basename(file), e)
      continue
    return epoch_of(os.path.basename(file))
  if read_state(model_dir):
    logging.warning("no loadable checkpoint in %s; starting from scratch",
                    checkpoint_dir(model_dir))
  return 0


class EpochCheckpoint(keras.callbacks.Callback):
  """Saves every epoch atomically, its MONITORS values in the index, and keeps the weights with
  the lowest `monitor` (held-out `val_l1`, or `sel_l1` on the selection subjects)."""

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
    monitored = {k: float(logs[k]) for k in MONITORS if k in (logs or {})}
    save_epoch(self.model, self.model_dir, finished, monitored)
    value = monitored.get(self.monitor)
    if value is not None and value < self.best:
      self.best = value
      save_best(self.model, self.model_dir, finished, monitored)


# ------------------------------------------------------------------ models of a run
def build_model(config: TrainConfig, precision: str | None = None):
  """The compiled trainer the config describes, built under `precision` (default: the run's)."""
  return build_trainer(model=config.model, pair_disentangle=config.pair_disentangle,
                       gan=config.gan, beta=config.beta, lam=config.lam, seed=config.seed,
                       translator_lr=config.translator_lr,
                       discriminator_lr=config.discriminator_lr,
                       adam_beta_1=config.adam_beta_1, jit=config.jit,
                       precision=precision or config.precision, recipe=config.recipe)


@dataclasses.dataclass(frozen=True)
class LoadedRun:
  """A finished run's trainer (at the run's precision) with the weights it was given."""

  trainer: object
  config: TrainConfig
  weights_path: str
  epoch: int | None


def load_trainer(model_dir: str, weights: str = "last") -> LoadedRun:
  """The run's trainer with its best or last weights (their average, where the run's recipe
  keeps one: training/recipes.py), for inference."""
  config = load_config(model_dir)
  weights_path, epoch = weights_file(model_dir, weights)
  trainer = build_model(config)
  load_weights(trainer, weights_path)
  trainer.use_average()
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
  """evaluation.csv, predictions.npz (float16) and then evaluation.json, each atomically: the
  report is written last, as it marks a finished evaluation (a study's job is done when it
  exists, and then reads the predictions)."""
  with (atomic.atomic_path(path(model_dir, EVALUATION_JSON)) as report_tmp,
        atomic.atomic_path(path(model_dir, PREDICTIONS_NPZ), suffix=".npz") as npz_tmp,
        atomic.atomic_path(path(model_dir, EVALUATION_CSV)) as csv_tmp):
    with open(csv_tmp, "w") as f:  # all three written before any is renamed (last: the report)
      f.write(per_subject_csv)
    np.savez(npz_tmp, subject_ids=np.array(subject_ids),
             **{name: p.astype(np.float16) for name, p in predictions.items()})
    with open(report_tmp, "w") as f:
      f.write(json.dumps(report, indent=2))


def read_evaluation(model_dir: str) -> dict | None:
  """The evaluation report, or None when the run has none (yet)."""
  return read_json(path(model_dir, EVALUATION_JSON))


def read_predictions(model_dir: str) -> dict[str, np.ndarray]:
  """{method: float32 [R, 64, 64]} and "subject_ids" of the evaluation's predictions.npz."""
  with np.load(path(model_dir, PREDICTIONS_NPZ)) as stored:
    return {name: stored[name] if name == "subject_ids" else stored[name].astype(np.float32)
            for name in stored.files}
