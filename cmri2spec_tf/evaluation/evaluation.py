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
Reference levels (`references`, L1 only, never ranked as methods): the word's mean training
window (told the word: what recognising the word alone gives) and each recording's own mean
window (told the truth: the floor of one prediction per recording).

Speech metrics (speech/speech_metrics.py: STOI, ESTOI, MCD, MCD-DTW, PESQ) score sound, not
pictures:
for `audio_windows` windows of each held-out recording (evenly spaced, 3 by default), every
method's spectrogram is turned into sound by each vocoder (Griffin-Lim, and the neural vocoder
when one is given) and compared with the recording's own audio of that window, read again from
its file. The true spectrogram of each window goes through the same vocoders: the `ceiling`
entry, the best a vocoder allows. Keys are VOCODER_METRIC (griffin_lim_stoi, vocoder_mcd, ...).
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from cmri2spec_tf.evaluation import baselines
from cmri2spec_tf.evaluation import utterances as utterances_lib
from cmri2spec_tf.training import runs
from cmri2spec_tf.speech import speech_metrics, vocoders
from cmri2spec_tf.data import clips
from cmri2spec_tf.data import dataset as dataset_lib
from cmri2spec_tf.data.dataset import ArrayDataset
from cmri2spec_tf.data.spectrogram import normalized_to_db

METRICS = ("l1", "mse", "l1_db")
CSV_COLUMNS = ("method", "subject_id", "word") + METRICS
AUDIO_WINDOWS = 3
CEILING = "truth"  # the true spectrogram through the vocoder, in tables and CSV rows


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


def metric_keys(rows: list[dict]) -> list[str]:
  """The metrics the rows hold: Table 2's, then the speech metrics (VOCODER_METRIC)."""
  ids = {"recording_id", "subject_id", "word"}
  return [k for k in rows[0] if k not in ids] if rows else list(METRICS)


def subject_scores(rows: list[dict]) -> list[dict]:
  """Recording rows -> one row per subject (mean of its recordings), in first-seen order."""
  by_subject: dict[str, list[dict]] = {}
  for row in rows:
    by_subject.setdefault(row["subject_id"], []).append(row)
  keys = metric_keys(rows)
  return [{"subject_id": s, "word": "+".join(sorted({r["word"] for r in group})),
           **{m: speech_metrics.mean_known([r[m] for r in group]) for m in keys}}
          for s, group in by_subject.items()]


def overall(rows: list[dict]) -> dict:
  """Mean of each metric over the recordings."""
  return ({m: speech_metrics.mean_known([r[m] for r in rows]) for m in metric_keys(rows)}
          | {"n_recordings": len(rows)})


# ------------------------------------------------------------------ speech metrics
def audio_window_indices(n_windows: int, count: int) -> list[int]:
  """`count` windows spread evenly inside a recording's n_windows, ends excluded."""
  return [int(i) for i in np.round(np.linspace(0, n_windows - 1, count + 2)[1:-1])]


def speech_scores(predictions: dict[str, np.ndarray], heldout: ArrayDataset,
                  references: np.ndarray, windows: list[int], vocoder_list) -> dict:
  """{method or CEILING: recording rows of VOCODER_METRIC means over the windows}.

  references [R, len(windows), window_samples]: each recording's audio of those windows. A
  method's one spectrogram per recording is voiced once per vocoder and compared with every
  window's audio; the ceiling voices each window's own true spectrogram."""
  rate = heldout.params.sample_rate
  rows = {name: [{"recording_id": heldout.recording_ids[r], "subject_id": heldout.subject_ids[r],
                  "word": heldout.words[r]} for r in range(len(heldout))]
          for name in (CEILING, *predictions)}
  for vocoder in vocoder_list:
    for r in range(len(heldout)):
      truths = vocoder.many(heldout.spectrograms[r, windows].astype(np.float32))
      _put(rows[CEILING][r], vocoder.name, [speech_metrics.audio_scores(ref, sound, rate)
                                            for ref, sound in zip(references[r], truths)])
    for name, spectrograms in predictions.items():
      for r, sound in enumerate(vocoder.many(np.asarray(spectrograms, np.float32))):
        _put(rows[name][r], vocoder.name, [speech_metrics.audio_scores(ref, sound, rate)
                                           for ref in references[r]])
  return rows


def _put(row: dict, vocoder_name: str, scores: list[dict]) -> None:
  for metric, value in speech_metrics.mean_scores(scores).items():
    row[f"{vocoder_name}_{metric}"] = value


def predict_recordings(model, data, batch_size: int = 8) -> np.ndarray:
  """[R, 64, 64]: the model's spectrogram for each recording's MRI (one forward pass each)."""
  predictions = [np.asarray(model.predict_on_batch(
      data.mri[i:i + batch_size].astype(np.float32)[..., None]), np.float32)
      for i in range(0, len(data), batch_size)]
  return np.concatenate(predictions)[..., 0]


def to_csv(per_method: dict[str, list[dict]]) -> str:
  """method, subject_id, word, metrics: per-subject rows, then an ALL row per method (the
  ceiling, CEILING, has only the speech metrics)."""
  columns = list(CSV_COLUMNS) + [k for rows in per_method.values() for k in metric_keys(rows)
                                 if k not in METRICS]
  out = io.StringIO()
  writer = csv.DictWriter(out, list(dict.fromkeys(columns)), restval="", lineterminator="\n")
  writer.writeheader()
  for method, rows in per_method.items():
    for row in subject_scores(rows):
      writer.writerow({"method": method, **{k: _fmt(v) for k, v in row.items()}})
    total = overall(rows)
    writer.writerow({"method": method, "subject_id": "ALL", "word": "",
                     **{m: _fmt(total[m]) for m in metric_keys(rows)}})
  return out.getvalue()


def _fmt(value):
  if value is None:
    return ""
  return f"{value:.6f}" if isinstance(value, float) else value


# ------------------------------------------------------------------ a trained run
def evaluate_run(model_dir: str, data_dir: str | None = None, cache_dir: str | None = None,
                 weights: str = "model", verbose: bool = True, vocoder: str | None = None,
                 audio_windows: int = AUDIO_WINDOWS, report_html: bool = True,
                 utterances: str | None = None) -> dict:
  """Scores a run's model and the baselines on its fold.

  `weights`: "model" (the run's model: the last epoch, or the epoch chosen on the run's
  selection subjects; nothing was chosen by looking at the held-out subjects, the honest
  number), "last", or "best" (the epoch with the lowest L1 on the selection subjects, or,
  for a run without them, on the held-out ones: optimistic, as that choice was made on the very
  subjects it is scored on).
  `vocoder`: a vocoder folder (speech/vocoders.py) scored beside Griffin-Lim; `audio_windows`:
  windows per recording for the speech metrics (0: none). `report_html`: also write the listening
  report (listening.py). `utterances`: a manifest of whole recordings whose held-out subjects'
  recordings are also scored whole (utterances.py); a time-aligned run's own data by default.

  Writes the run's evaluation report, per-subject rows and predictions (one spectrogram per
  held-out recording and method; runs.write_evaluation). Returns the report.
  """
  config = runs.load_config(model_dir)
  params = runs.load_spec_params(model_dir)
  source = data_dir or config.data_dir
  vocoder_list = [vocoders.GriffinLim(params)] + ([vocoders.from_flag(vocoder, params)]
                                                 if vocoder else [])
  data = clips.load_examples(config.pairing, source, params, config.clip_hop_s,
                             cache_dir or config.cache_dir, verbose=verbose)
  train, heldout = data.fold(config.split, config.fold, config.split_seed)
  run = runs.load_trainer(model_dir, weights)
  translator = run.trainer.inference_model()
  predictions = {config.model: predict_recordings(translator, heldout)}
  predictions |= baselines.predictions(train, heldout)
  per_method = {name: recording_scores(p, heldout) for name, p in predictions.items()}
  per_reference = {name: recording_scores(p, heldout)
                   for name, p in baselines.references(train, heldout).items()}
  windows = audio_window_indices(heldout.spectrograms.shape[1], audio_windows)
  references = (dataset_lib.window_audio(heldout, source, list(range(len(heldout))), windows)
                if windows else None)
  ceiling = (_add_speech_scores(per_method, predictions, heldout, references, windows,
                                vocoder_list) if windows else None)
  whole = utterances or (source if config.pairing == "time" else None)
  utterance_rows, utterance_examples = None, None
  if whole:
    utterance_rows, utterance_examples = utterances_lib.evaluate_heldout(
        whole, translator.predict_on_batch, set(train.subject_ids), set(heldout.subject_ids),
        params, config.clip_hop_s, cache_dir or config.cache_dir, vocoder_list, config.model,
        train if whole == source and config.pairing == "time" else None)
  report = {
      "model_dir": os.path.abspath(model_dir), "model": config.model, "fold": config.fold,
      "split": config.split, "seed": config.seed, "weights_choice": weights,
      "weights": os.path.basename(run.weights_path), "epoch": run.epoch,
      "heldout_subjects": list(dict.fromkeys(heldout.subject_ids)),
      "parameters": {config.model: translator.count_params()},
      "methods": {name: _scored(rows) for name, rows in per_method.items()},
      "references": {name: _scored(rows) for name, rows in per_reference.items()},
      "speech": {"windows": windows, "vocoders": [v.name for v in vocoder_list],
                 "vocoder_dir": os.path.abspath(vocoder) if vocoder else None,
                 "pesq": speech_metrics.pesq_available()},
  }
  if ceiling is not None:
    report["ceiling"] = _scored(ceiling)
  if whole:
    report["utterances"] = {"hop_s": config.clip_hop_s, "manifest": os.path.abspath(whole),
                            "methods": {name: _scored(rows) for name, rows in
                                        utterance_rows.items()}}
  csv_methods = per_method | per_reference | ({CEILING: ceiling} if ceiling is not None else {})
  runs.write_evaluation(model_dir, report, to_csv(csv_methods), heldout.subject_ids, predictions)
  from cmri2spec_tf.evaluation import latents

  latents.latent_view_of_run(model_dir, run.trainer, train, heldout, source,
                             f"{config.model} fold {config.fold}, epoch {run.epoch}")
  if report_html:
    from cmri2spec_tf.evaluation import listening

    listening.write_report(model_dir, report, heldout, predictions, vocoder_list, windows,
                           references, utterance_examples)
  return report


def _add_speech_scores(per_method: dict[str, list[dict]], predictions: dict[str, np.ndarray],
                       heldout: ArrayDataset, references: np.ndarray, windows: list[int],
                       vocoder_list) -> list[dict]:
  """Adds each method's speech metrics (speech_scores) to its recording rows; returns the
  ceiling's rows (the true spectrograms voiced)."""
  speech = speech_scores(predictions, heldout, references, windows, vocoder_list)
  for name, rows in per_method.items():
    for row, audio_row in zip(rows, speech[name]):
      row.update({k: v for k, v in audio_row.items() if k not in row})
  return speech[CEILING]


def _scored(rows: list[dict]) -> dict:
  return {"overall": overall(rows), "subjects": subject_scores(rows), "recordings": rows}


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
  for name, result in report.get("references", {}).items():
    total = result["overall"]
    lines.append(f"{baselines.REFERENCE_LABELS[name]:<32}{total['l1']:>9.4f}{total['mse']:>9.4f}"
                 f"{total['l1_db']:>8.2f}")
  lines.append(f"\nper subject ({report['model']}):")
  lines.append(f"{'subject':<12}{'word':<10}{'L1':>9}{'MSE':>9}{'L1 dB':>8}")
  for row in methods[report["model"]]["subjects"]:
    lines.append(f"{row['subject_id']:<12}{row['word']:<10}{row['l1']:>9.4f}{row['mse']:>9.4f}"
                 f"{row['l1_db']:>8.2f}")
  lines += ["", *format_speech(report)] if report.get("ceiling") else []
  lines += ["", *format_utterances(report)] if report.get("utterances") else []
  return "\n".join(lines)


def format_utterances(report: dict) -> list[str]:
  """The whole-utterance lines (a time-aligned run): per method, L1 over the mel timeline and
  each vocoder's speech metrics against the recording's audio."""
  result = report["utterances"]["methods"]
  vocoders_used = report["speech"]["vocoders"]
  n = result[CEILING]["overall"]["n_recordings"] if CEILING in result else 0
  lines = [f"whole utterances ({n} held-out recordings synthesized continuously, clips every "
           f"{report['utterances']['hop_s']:g} s, against their audio):",
           f"{'method':<20}{'L1':>8}{'vocoder':>13}{'STOI':>7}{'ESTOI':>7}{'MCD':>7}"
           f"{'MCD-DTW':>9}{'PESQ':>7}"]
  for name, scored in result.items():
    total = scored["overall"]
    l1 = f"{total['l1']:>8.4f}" if "l1" in total else f"{'-':>8}"
    label = f"{CEILING} (ceiling)" if name == CEILING else name
    for vocoder in vocoders_used:
      values = [total.get(f"{vocoder}_{m}") for m in speech_metrics.AUDIO_METRICS]
      cells = "".join(f"{v:>{w}.{d}f}" if v is not None else f"{'-':>{w}}"
                      for v, w, d in zip(values, (7, 7, 7, 9, 7), (3, 3, 2, 2, 2)))
      lines.append(f"{label:<20}{l1}{vocoder:>13}{cells}")
  return lines


def format_speech(report: dict) -> list[str]:
  """The speech-metric lines: per vocoder, the ceiling (truth) then every method."""
  speech = report["speech"]
  lines = [f"speech metrics ({len(speech['windows'])} windows per held-out recording, against "
           f"its audio; PESQ {'wideband' if speech['pesq'] else 'not installed'}):",
           f"{'method':<20}{'vocoder':<13}{'STOI':>7}{'ESTOI':>7}{'MCD':>7}{'MCD-DTW':>9}"
           f"{'PESQ':>7}"]
  entries = {f"{CEILING} (ceiling)": report["ceiling"]} | report["methods"]
  for vocoder in speech["vocoders"]:
    for name, result in entries.items():
      total = result["overall"]
      values = [total.get(f"{vocoder}_{m}") for m in speech_metrics.AUDIO_METRICS]
      cells = "".join(f"{v:>{w}.{d}f}" if v is not None else f"{'-':>{w}}"
                      for v, w, d in zip(values, (7, 7, 7, 9, 7), (3, 3, 2, 2, 2)))
      lines.append(f"{name:<20}{vocoder:<13}{cells}")
  return lines
