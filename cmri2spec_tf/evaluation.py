"""Held-out evaluation (the metric of Table 2) and the trivial baselines, one code path for all.

Every window of a recording has the same MRI input (the paper slides its 100 windows over the
audio only), so a method predicts one spectrogram per recording and it is compared with each of
that recording's windows:
  L1    = mean |y - y_hat| over the 64x64 normalized pixels and the windows (Table 2's metric),
  MSE   = mean (y - y_hat)^2 over the same,
  L1 dB = mean |dB(y) - dB(y_hat)|, the same error in decibels (the normalization is linear in dB,
          so this is L1 times the normalized range, 120 dB by default) for a physical reading.
Per-subject numbers average a subject's recordings; the overall number averages recordings, so
with one recording per subject (the paper, the phantom) every held-out subject weighs the same.

Baselines, given the same input information as the models (the MRI of each recording):
  mean spectrogram   the mean of every training window (one image for everyone),
  nearest neighbour  the mean spectrogram of the training recording whose MRI sequence is closest
                     (Euclidean distance over the normalized 26 x 128 x 128 voxels).
"""

from __future__ import annotations

import csv
import io
import json
import os

import keras
import numpy as np

from cmri2spec_tf import atomic, checkpoints, experiment
from cmri2spec_tf.data import dataset as dataset_lib
from cmri2spec_tf.data.dataset import ArrayDataset
from cmri2spec_tf.data.spectrogram import SpecParams, normalized_to_db

METRICS = ("l1", "mse", "l1_db")
BASELINES = ("mean", "nearest_neighbour")
CSV_COLUMNS = ("method", "subject_id", "word") + METRICS


def recording_scores(predictions: np.ndarray, data: ArrayDataset) -> list[dict]:
  """predictions [R, 64, 64] (or [R, 64, 64, 1]) against every window of each recording."""
  predictions = np.asarray(predictions, np.float32).reshape(len(data), 1, *data.spectrograms.shape[2:])
  targets = data.spectrograms.astype(np.float32)
  error = targets - predictions
  error_db = normalized_to_db(targets, data.params) - normalized_to_db(predictions, data.params)
  axes = (1, 2, 3)
  values = {"l1": np.abs(error).mean(axes), "mse": np.square(error).mean(axes),
            "l1_db": np.abs(error_db).mean(axes)}
  return [{"subject_id": data.subject_ids[r], "word": data.words[r],
           **{m: float(values[m][r]) for m in METRICS}} for r in range(len(data))]


def subject_scores(rows: list[dict]) -> list[dict]:
  """Recording rows -> one row per subject (mean of its recordings), in first-seen order."""
  by_subject: dict[str, list[dict]] = {}
  for row in rows:
    by_subject.setdefault(row["subject_id"], []).append(row)
  return [{"subject_id": s, "word": "+".join(sorted({r["word"] for r in group})),
           **{m: float(np.mean([r[m] for r in group])) for m in METRICS}}
          for s, group in by_subject.items()]


def overall(rows: list[dict]) -> dict:
  """Mean of each metric over the recordings."""
  return {m: float(np.mean([r[m] for r in rows])) for m in METRICS} | {"n_recordings": len(rows)}


def predict_recordings(model, data: ArrayDataset, batch_size: int = 8) -> np.ndarray:
  """[R, 64, 64]: the model's spectrogram for each recording's MRI (one forward pass each)."""
  predictions = [np.asarray(model.predict_on_batch(
      data.mri[i:i + batch_size].astype(np.float32)[..., None]), np.float32)
      for i in range(0, len(data), batch_size)]
  return np.concatenate(predictions)[..., 0]


def mean_spectrogram(train: ArrayDataset, heldout: ArrayDataset) -> np.ndarray:
  """[R, 64, 64]: the mean training window, for every held-out recording."""
  mean = train.spectrograms.astype(np.float32).mean(axis=(0, 1))
  return np.broadcast_to(mean, (len(heldout),) + mean.shape).copy()


def nearest_neighbour(train: ArrayDataset, heldout: ArrayDataset) -> np.ndarray:
  """[R, 64, 64]: the mean spectrogram of the training recording with the closest MRI."""
  train_mri = train.mri.reshape(len(train), -1).astype(np.float32)
  squared_norms = np.einsum("ij,ij->i", train_mri, train_mri)
  picks = []
  for mri in heldout.mri.reshape(len(heldout), -1).astype(np.float32):
    picks.append(int(np.argmin(squared_norms - 2 * train_mri @ mri)))
  return train.spectrograms[picks].astype(np.float32).mean(axis=1)


def baseline_predictions(train: ArrayDataset, heldout: ArrayDataset) -> dict[str, np.ndarray]:
  return {"mean": mean_spectrogram(train, heldout),
          "nearest_neighbour": nearest_neighbour(train, heldout)}


def to_csv(per_method: dict[str, list[dict]]) -> str:
  """method, subject_id, word, metrics: per-subject rows, then an ALL row per method."""
  out = io.StringIO()
  writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
  writer.writeheader()
  for method, rows in per_method.items():
    for row in subject_scores(rows):
      writer.writerow({"method": method, **{k: _fmt(v) for k, v in row.items()}})
    total = overall(rows)
    writer.writerow({"method": method, "subject_id": "ALL", "word": "",
                     **{m: _fmt(total[m]) for m in METRICS}})
  return out.getvalue()


def _fmt(value):
  return f"{value:.6f}" if isinstance(value, float) else value


# ------------------------------------------------------------------ a trained run
REPORT_JSON, REPORT_CSV, PREDICTIONS = "evaluation.json", "evaluation.csv", "predictions.npz"


def evaluate_run(model_dir: str, data_dir: str | None = None, cache_dir: str | None = None,
                 weights: str = "last", verbose: bool = True) -> dict:
  """Scores a run's model and the baselines on its fold.

  `weights`: "last" (the final epoch: nothing was chosen by looking at the held-out subjects,
  the honest number) or "best" (the epoch with the lowest held-out L1 during training:
  optimistic, as that choice was made on the very subjects it is scored on).

  Writes model_dir/evaluation.json (overall and per-subject numbers, parameter counts),
  evaluation.csv (per-subject rows) and predictions.npz (one spectrogram per held-out recording
  and method), each atomically. Returns the report.
  """
  config = experiment.load_config(model_dir)
  with open(os.path.join(model_dir, "spec_params.json")) as f:
    params = SpecParams.from_json(f.read())
  data = dataset_lib.load_dataset(data_dir or config.data_dir, params,
                                  cache_dir or config.cache_dir, verbose=verbose)
  train, heldout = experiment.split_fold(data, config)
  keras.config.set_dtype_policy(config.precision)
  model = experiment.build_model(config)
  weights_path, epoch = weights_file(model_dir, weights)
  checkpoints.load_weights(model, weights_path)
  translator = model.inference_model()
  predictions = {config.model: predict_recordings(translator, heldout)}
  predictions |= baseline_predictions(train, heldout)
  per_method = {name: recording_scores(p, heldout) for name, p in predictions.items()}
  report = {
      "model_dir": os.path.abspath(model_dir), "model": config.model, "fold": config.fold,
      "split": config.split, "seed": config.seed, "weights_choice": weights,
      "weights": os.path.basename(weights_path),
      "epoch": epoch, "heldout_subjects": list(dict.fromkeys(heldout.subject_ids)),
      "parameters": {config.model: translator.count_params()},
      "methods": {name: {"overall": overall(rows), "subjects": subject_scores(rows)}
                  for name, rows in per_method.items()},
  }
  atomic.write_text(os.path.join(model_dir, REPORT_JSON), json.dumps(report, indent=2))
  atomic.write_text(os.path.join(model_dir, REPORT_CSV), to_csv(per_method))
  with atomic.atomic_path(os.path.join(model_dir, PREDICTIONS), suffix=".npz") as tmp:
    np.savez(tmp, subject_ids=np.array(heldout.subject_ids),
             **{name: p.astype(np.float16) for name, p in predictions.items()})
  return report


def weights_file(model_dir: str, which: str):
  """(path, epoch) of model_dir's best or last checkpoint; a clear error when there is none."""
  if which == "best":
    best = checkpoints.read_json(os.path.join(model_dir, "best.json"))
    path = os.path.join(model_dir, "best.weights.h5")
    if best and os.path.exists(path):
      return path, best.get("epoch")
    raise FileNotFoundError(f"{model_dir} has no best.weights.h5 yet: train at least one epoch")
  if which == "last":
    state = checkpoints.read_json(os.path.join(checkpoints.checkpoint_dir(model_dir), "state.json"))
    if state:
      return os.path.join(checkpoints.checkpoint_dir(model_dir), state["weights"]), state["epoch"]
    raise FileNotFoundError(f"{model_dir} has no epoch checkpoint yet")
  raise ValueError(f"weights must be 'best' or 'last', got {which!r}")


def format_report(report: dict) -> str:
  """The printed table: overall rows per method, then the model's per-subject rows."""
  methods = report["methods"]
  lines = [f"fold {report['fold']} ({report['split']}), weights {report['weights']} "
           f"(epoch {report['epoch']}), held-out: {', '.join(report['heldout_subjects'])}",
           f"{'method':<20}{'params':>12}{'L1':>9}{'MSE':>9}{'L1 dB':>8}"]
  for name, result in methods.items():
    params = report["parameters"].get(name)
    total = result["overall"]
    lines.append(f"{name:<20}{params if params is not None else '-':>12}"
                 f"{total['l1']:>9.4f}{total['mse']:>9.4f}{total['l1_db']:>8.2f}")
  lines.append(f"\nper subject ({report['model']}):")
  lines.append(f"{'subject':<12}{'word':<10}{'L1':>9}{'MSE':>9}{'L1 dB':>8}")
  for row in methods[report["model"]]["subjects"]:
    lines.append(f"{row['subject_id']:<12}{row['word']:<10}{row['l1']:>9.4f}{row['mse']:>9.4f}"
                 f"{row['l1_db']:>8.2f}")
  return "\n".join(lines)
