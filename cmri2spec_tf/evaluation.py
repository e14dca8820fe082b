"""Held-out evaluation (the metric of Table 2) and the trivial baselines, one code path for all.

Every window of a recording has the same MRI input (the paper slides its 100 windows over the
audio only), so a method predicts one spectrogram per recording and it is compared with each of
that recording's windows:
  L1    = mean |y - y_hat| over the 64x64 normalized pixels and the windows (Table 2's metric),
  MSE   = mean (y - y_hat)^2 over the same,
  L1 dB = mean |dB(y) - dB(y_hat)|, the same error in decibels (the normalization is linear in dB,
          so this is L1 times the normalized range, 120 dB by default) for a physical reading.
Per-subject numbers average a subject's recordings (or segments); the overall number averages
recordings, so with one recording per subject (the paper, the phantom) every held-out subject
weighs the same. The report also keeps every recording's own row (`recordings`, with its
subject:file[@start-end] id), so segments of long recordings are scored one by one.

Baselines (baselines.py): the mean training spectrogram and the nearest neighbour by MRI.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from cmri2spec_tf import baselines, runs
from cmri2spec_tf.data import dataset as dataset_lib
from cmri2spec_tf.data.dataset import ArrayDataset
from cmri2spec_tf.data.spectrogram import normalized_to_db

METRICS = ("l1", "mse", "l1_db")
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
  return [{"recording_id": data.recording_ids[r], "subject_id": data.subject_ids[r],
           "word": data.words[r], **{m: float(values[m][r]) for m in METRICS}}
          for r in range(len(data))]


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
def evaluate_run(model_dir: str, data_dir: str | None = None, cache_dir: str | None = None,
                 weights: str = "last", verbose: bool = True) -> dict:
  """Scores a run's model and the baselines on its fold.

  `weights`: "last" (the final epoch: nothing was chosen by looking at the held-out subjects,
  the honest number) or "best" (the epoch with the lowest held-out L1 during training:
  optimistic, as that choice was made on the very subjects it is scored on).

  Writes the run's evaluation report, per-subject rows and predictions (one spectrogram per
  held-out recording and method; runs.write_evaluation). Returns the report.
  """
  config = runs.load_config(model_dir)
  params = runs.load_spec_params(model_dir)
  data = dataset_lib.load_dataset(data_dir or config.data_dir, params,
                                  cache_dir or config.cache_dir, verbose=verbose)
  train, heldout = data.fold(config.split, config.fold, config.split_seed)
  run = runs.load_trainer(model_dir, weights)
  translator = run.trainer.inference_model()
  predictions = {config.model: predict_recordings(translator, heldout)}
  predictions |= baselines.predictions(train, heldout)
  per_method = {name: recording_scores(p, heldout) for name, p in predictions.items()}
  report = {
      "model_dir": os.path.abspath(model_dir), "model": config.model, "fold": config.fold,
      "split": config.split, "seed": config.seed, "weights_choice": weights,
      "weights": os.path.basename(run.weights_path), "epoch": run.epoch, "heldout_subjects": list(dict.fromkeys(heldout.subject_ids)),
      "parameters": {config.model: translator.count_params()},
      "methods": {name: {"overall": overall(rows), "subjects": subject_scores(rows),
                         "recordings": rows} for name, rows in per_method.items()},
  }
  runs.write_evaluation(model_dir, report, to_csv(per_method), heldout.subject_ids, predictions)
  return report


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
