"""The listening report: report.html in a run folder, written by `evaluate`.

One self-contained HTML file (every image and sound embedded as a data: URI, so it can be mailed
or opened from anywhere): the overall scores of every method (Table 2's L1 and the speech
metrics per vocoder, with the ceiling each vocoder allows), then per held-out subject its first
recording: a strip of MRI frames, the true spectrogram of the middle scored window beside the
model's prediction and their error, and players for the recording's own audio of that window,
the truth through each vocoder and the prediction through each vocoder, with the subject's row
of scores. Where whole utterances were scored (a time-aligned run, `evaluate --utterances`),
also the subject's first whole recording: its mel timelines and players (the first 30 s).
"""

from __future__ import annotations

import base64
import html
import os
import io

import numpy as np

from cmri2spec_tf.base import atomic
from cmri2spec_tf.evaluation import baselines
from cmri2spec_tf.speech import plots, speech_metrics
from cmri2spec_tf.training import runs
from cmri2spec_tf.data.audio import wav_bytes

STRIP_FRAMES = 8
UTTERANCE_SECONDS = 30.0  # of a whole recording, played in the report
METRIC_LABELS = {"stoi": "STOI", "estoi": "ESTOI", "mcd": "MCD dB", "mcd_dtw": "MCD-DTW dB",
                 "pesq": "PESQ"}
STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:70em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .5em;
text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}
section{border-top:2px solid #888;margin-top:1.5em}img{max-width:100%}
.players{display:grid;grid-template-columns:max-content max-content;gap:.3em 1em;
align-items:center}"""


def write_report(model_dir: str, report: dict, heldout, predictions: dict[str, np.ndarray],
                 vocoder_list, windows: list[int], references: np.ndarray | None,
                 utterances: dict[str, dict] | None = None) -> str:
  """Writes model_dir/report.html atomically; returns its path. `utterances`: per held-out
  subject its first whole recording synthesized continuously (evaluation/utterances.py)."""
  model = report["model"]
  sections = [_subject_section(report, heldout, r, predictions[model], vocoder_list, windows,
                               references, model_dir)
              + _utterance_section((utterances or {}).get(heldout.subject_ids[r]), heldout.params)
              for r in _first_recordings(heldout)]
  page = "\n".join([
      "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
      f"<title>{html.escape(model)}: listening report</title><style>{STYLE}</style></head><body>",
      f"<h1>Listening report: {html.escape(report['model_dir'])}</h1>",
      f"<p>{html.escape(model)}, fold {report['fold']} ({html.escape(str(report['split']))}), "
      f"weights {html.escape(report['weights'])} (epoch {report['epoch']}); held-out subjects: "
      f"{html.escape(', '.join(report['heldout_subjects']))}. Speech metrics over windows "
      f"{', '.join(map(str, windows)) or '-'} of each recording, against its own audio.</p>",
      "<h2>Scores</h2>", _overall_table(report), *sections, "</body></html>"])
  path = runs.path(model_dir, runs.REPORT_HTML)
  atomic.write_text(path, page)
  return path


def _first_recordings(heldout) -> list[int]:
  return [heldout.subject_ids.index(s) for s in dict.fromkeys(heldout.subject_ids)]


def _overall_table(report: dict) -> str:
  vocoder_names = report["speech"]["vocoders"] if report.get("ceiling") else []
  head = ["method", "L1", "L1 dB"] + [f"{METRIC_LABELS[m]} ({v})" for v in vocoder_names
                                      for m in speech_metrics.AUDIO_METRICS]
  entries = ({"truth (ceiling)": report["ceiling"]} if report.get("ceiling") else {})
  entries |= report["methods"]
  entries |= {baselines.REFERENCE_LABELS[n]: e for n, e in report.get("references", {}).items()}
  rows = [[name, total.get("l1"), total.get("l1_db")]
          + [total.get(f"{v}_{m}") for v in vocoder_names for m in speech_metrics.AUDIO_METRICS]
          for name, total in ((n, e["overall"]) for n, e in entries.items())]
  return _table(head, rows)


def _subject_section(report, heldout, r, predicted, vocoder_list, windows, references,
                     model_dir) -> str:
  params = heldout.params
  subject = heldout.subject_ids[r]
  window = windows[len(windows) // 2] if windows else heldout.spectrograms.shape[1] // 2
  truth = heldout.spectrograms[r, window].astype(np.float32)
  prediction = np.asarray(predicted[r], np.float32).reshape(truth.shape)
  spectrograms = plots.spectrogram_row_png(
      {f"truth (window {window})": truth, "prediction": prediction,
       "absolute error": np.abs(truth - prediction)}, params,
      title=f"{subject} ('{heldout.words[r]}'): L1 {np.abs(truth - prediction).mean():.3f}")
  sounds = []
  if references is not None:
    sounds.append((f"recording, window {window}", references[r, windows.index(window)]))
  for vocoder in vocoder_list:
    sounds.append((f"truth through {vocoder.name}", vocoder(truth)))
  for vocoder in vocoder_list:
    sounds.append((f"prediction through {vocoder.name}", vocoder(prediction)))
  players = "".join(f"<span>{html.escape(label)}</span>"
                    f'<audio controls preload="auto" src="{_data_uri(wav_bytes(sound, params.sample_rate), "audio/wav")}"></audio>'
                    for label, sound in sounds)
  row = next(s for s in report["methods"][report["model"]]["subjects"]
             if s["subject_id"] == subject)
  return "\n".join([
      f"<section><h2>{html.escape(subject)} ({html.escape(row['word'])})</h2>",
      f'<img alt="MRI frames of {html.escape(subject)}" src="{_data_uri(_mri_strip(heldout.mri[r]), "image/png")}">',
      f'<img alt="spectrograms of {html.escape(subject)}" src="{_data_uri(spectrograms, "image/png")}">',
      f'<div class="players">{players}</div>',
      _attribution_strip(model_dir, subject),
      _table(["metric", "value"], [[k, v] for k, v in row.items()
                                   if k not in ("subject_id", "word")]),
      "</section>"])


def _utterance_section(example: dict | None, params) -> str:
  """The subject's first whole recording: its mel timelines (truth, prediction) and players for
  its audio and both timelines through each vocoder (the first UTTERANCE_SECONDS of each)."""
  if example is None:
    return ""
  truth, prediction = example["truth"], example["prediction"]
  seconds = truth.shape[1] * params.hop_length / params.sample_rate
  image = plots.spectrogram_row_png({"truth": truth, "prediction": prediction}, params,
                                    title=f"{example['recording_id']}: whole utterance",
                                    seconds=seconds)
  sounds = [("recording", example["audio"])] + [
      (f"{'truth' if name == 'truth' else 'prediction'} through {vocoder}", sound)
      for (name, vocoder), sound in example["sounds"].items()]
  limit = int(UTTERANCE_SECONDS * params.sample_rate)
  players = "".join(f"<span>{html.escape(label)}</span>"
                    f'<audio controls preload="auto" src="{_data_uri(wav_bytes(sound[:limit], params.sample_rate), "audio/wav")}"></audio>'
                    for label, sound in sounds)
  return "\n".join([
      f"<h3>Whole utterance ({seconds:.1f} s, synthesized continuously)</h3>",
      f'<img alt="whole utterance of {html.escape(example["recording_id"])}" src="{_data_uri(image, "image/png")}">',
      f'<div class="players">{players}</div>'])


def _attribution_strip(model_dir: str, subject: str) -> str:
  """The subject's attribution strip (explain), where one was written; else nothing."""
  path = runs.explain_strip(model_dir, subject)
  if not os.path.isfile(path):
    return ""
  with open(path, "rb") as f:
    png = f.read()
  return (f"<p>Where the prediction comes from (integrated gradients, python -m "
          f"cmri2spec_tf.explain):</p><img alt=\"attribution of {html.escape(subject)}\" "
          f"src=\"{_data_uri(png, 'image/png')}\">")


def _mri_strip(mri: np.ndarray) -> bytes:
  """STRIP_FRAMES frames of a [26, 128, 128] series side by side, as a grey PNG."""
  from PIL import Image

  picks = np.round(np.linspace(0, len(mri) - 1, STRIP_FRAMES)).astype(int)
  strip = np.concatenate([np.asarray(mri[i], np.float32) for i in picks], axis=1)
  out = io.BytesIO()
  Image.fromarray((np.clip(strip, 0, 1) * 255).astype(np.uint8)).save(out, format="PNG")
  return out.getvalue()


def _data_uri(data: bytes, mime: str) -> str:
  return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _table(head: list[str], rows: list[list]) -> str:
  cells = lambda tag, values: "".join(f"<{tag}>{html.escape(_cell(v))}</{tag}>" for v in values)
  return ("<table><tr>" + cells("th", head) + "</tr>"
          + "".join("<tr>" + cells("td", row) + "</tr>" for row in rows) + "</table>")


def _cell(value) -> str:
  if value is None:
    return "-"
  return f"{value:.4f}" if isinstance(value, float) else str(value)
