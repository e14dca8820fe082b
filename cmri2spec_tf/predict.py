"""Translates cine MRI series into mel spectrograms, pictures and sound.

  python -m cmri2spec_tf.predict --model=runs/demo --mri=scans/S01/mri --out=out/S01
  python -m cmri2spec_tf.predict --model=serving/cmri2spec/1 --mri=scans/ --out=out/ --batch

--model is a training run's model_dir (best held-out weights) or an exported SavedModel version
folder (`export`). --mri is one series (a folder of single-frame DICOM files or one multi-frame
file), read by the data layer exactly as in training; with --batch, every entry of the folder
--mri is one series and --out is a folder that gets one set of files per series.

For each series: PREFIX.npy (the normalized mel spectrogram, float32 [64, 64], mel bins
bottom-up x time), PREFIX.png (it, with time in seconds and frequency in Hz) and PREFIX.wav
(Griffin-Lim, mono, 22,050 Hz, window_samples long). Every series is read before anything is
written: a bad one stops the command with its file and problem, exit 1, no output.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
BATCH_SIZE = 8


def load_predictor(path: str):
  """(function mri [B, 26, 128, 128, 1] -> spectrograms [B, 64, 64], SpecParams)."""
  from cmri2spec_tf import export
  from cmri2spec_tf.data.spectrogram import SpecParams

  if os.path.exists(os.path.join(path, "saved_model.pb")):
    import tensorflow as tf

    serving = tf.saved_model.load(path).signatures["serving_default"]
    with open(os.path.join(path, "assets", export.SPEC_PARAMS_ASSET)) as f:
      params = SpecParams.from_json(f.read())
    return (lambda mri: serving(**{export.SERVING_INPUT: tf.constant(mri)})
            ["spectrogram"].numpy()[..., 0]), params
  if os.path.exists(os.path.join(path, "config.json")):
    translator, params, _ = export.load_translator(path)
    return lambda mri: np.asarray(translator.predict_on_batch(mri))[..., 0], params
  raise FileNotFoundError(f"{path}: neither a training run's model_dir (config.json) nor an "
                          "exported SavedModel (saved_model.pb)")


def list_series(mri: str, batch: bool) -> list[str]:
  """The series to translate: --mri itself, or with --batch every visible entry of it."""
  if not batch:
    return [mri]
  if not os.path.isdir(mri):
    raise FileNotFoundError(f"{mri}: --batch needs a folder holding one entry per series")
  entries = sorted(os.path.join(mri, e) for e in os.listdir(mri) if not e.startswith("."))
  if not entries:
    raise FileNotFoundError(f"{mri}: empty folder, no series to translate")
  return entries


def output_prefixes(series: list[str], out: str, batch: bool) -> list[str]:
  if not batch:
    return [out]
  return [os.path.join(out, os.path.splitext(os.path.basename(s.rstrip(os.sep)))[0])
          for s in series]


def read_all(series: list[str]) -> np.ndarray:
  """float32 [N, 26, 128, 128, 1]; raises DatasetProblems listing every unreadable series."""
  from cmri2spec_tf.data import dicom
  from cmri2spec_tf.data.problems import DataError, DatasetProblems

  frames, problems = [], []
  for path in series:
    try:
      frames.append(dicom.read_cine(path).frames)
    except DataError as e:
      problems.append(e.problem)
  if problems:
    raise DatasetProblems(problems)
  return np.stack(frames)[..., None]


def write_outputs(prefix: str, spectrogram: np.ndarray, params, title: str) -> None:
  """PREFIX.npy, PREFIX.png, PREFIX.wav, each written atomically."""
  import soundfile

  from cmri2spec_tf import atomic, plots
  from cmri2spec_tf.data.spectrogram import waveform_from_normalized

  with atomic.atomic_path(prefix + ".npy", suffix=".npy") as tmp:
    np.save(tmp, spectrogram.astype(np.float32))
  atomic.write_bytes(prefix + ".png", plots.spectrogram_row_png(
      {"predicted mel spectrogram": spectrogram}, params, title=title))
  waveform = waveform_from_normalized(spectrogram, params)
  with atomic.atomic_path(prefix + ".wav", suffix=".wav") as tmp:
    soundfile.write(tmp, waveform, params.sample_rate, subtype="PCM_16")


def predict(model: str, mri: str, out: str, batch: bool) -> list[str]:
  """Runs the whole command; returns the output prefixes written."""
  import keras

  series = list_series(mri, batch)
  prefixes = output_prefixes(series, out, batch)
  inputs = read_all(series)
  translate, params = load_predictor(model)
  bar = keras.utils.Progbar(len(series), unit_name="series") if batch else None
  spectrograms = []
  for start in range(0, len(series), BATCH_SIZE):
    spectrograms.extend(translate(inputs[start:start + BATCH_SIZE]))
    if bar:
      bar.update(min(start + BATCH_SIZE, len(series)))
  for path, prefix, spectrogram in zip(series, prefixes, spectrograms):
    title = os.path.join(*os.path.abspath(path).split(os.sep)[-2:])  # e.g. S01/mri
    write_outputs(prefix, spectrogram, params, title=title)
  return prefixes


def define_flags():
  flags.DEFINE_string("model", None, "A training run's model_dir or an exported SavedModel.",
                      required=True)
  flags.DEFINE_string("mri", None, "A cine series (folder or multi-frame file); with --batch a "
                      "folder of series.", required=True)
  flags.DEFINE_string("out", None, "Output prefix (PREFIX.png/.npy/.wav); with --batch a folder.",
                      required=True)
  flags.DEFINE_bool("batch", False, "Translate every series in the folder --mri.")


def main(argv):
  del argv
  from cmri2spec_tf.data.problems import DatasetProblems

  try:
    prefixes = predict(FLAGS.model, FLAGS.mri, FLAGS.out, FLAGS.batch)
  except DatasetProblems as e:
    print(f"cannot read the MRI input; nothing written:\n{e}", file=sys.stderr)
    sys.exit(1)
  except OSError as e:  # missing or unreadable files of the run
    print(f"error: {e}; nothing written", file=sys.stderr)
    sys.exit(1)
  for prefix in prefixes:
    print(f"wrote {prefix}.png, {prefix}.npy, {prefix}.wav")


if __name__ == "__main__":
  define_flags()
  app.run(main)
