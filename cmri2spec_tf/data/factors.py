"""What makes each subject of a dataset different, when it is known: `subjects.csv` beside the
manifest. The phantom writes it (it knows every factor); a user's own data has none, and what
needs it (evaluation/probes.py) says so and skips.

Columns (one row per subject; a value may be empty when it does not apply):
  subject_id, word       as in the manifest (the rtMRI phantom: its three words joined by +)
  f0_hz                  the speaker's mean fundamental frequency before declination
  vocal_tract_cm         vocal-tract length (formants scale by 17 cm / length)
  anatomy_scale          the drawn anatomy's size (grows with the vocal-tract length)
  anatomy_shift_x_px, anatomy_shift_y_px   where the anatomy sits in the image
  duration_s             the utterance's length (a cine series spans it)
  vowel_s                the stressed vowel's (/i/ or /u/) length
  segment_fractions      each phoneme segment's share of the utterance, ;-separated
  noise_dbfs             background noise level
"""

from __future__ import annotations

import csv
import io
import os

from cmri2spec_tf.base import atomic

FACTORS_CSV = "subjects.csv"
COLUMNS = ("subject_id", "word", "f0_hz", "vocal_tract_cm", "anatomy_scale",
           "anatomy_shift_x_px", "anatomy_shift_y_px", "duration_s", "vowel_s",
           "segment_fractions", "noise_dbfs")
NUMERIC = ("f0_hz", "vocal_tract_cm", "anatomy_scale", "anatomy_shift_x_px",
           "anatomy_shift_y_px", "duration_s", "vowel_s", "noise_dbfs")


def write_factors(folder: str, rows: list[dict]) -> str:
  """folder/subjects.csv from one dict per subject (keys of COLUMNS), atomically."""
  out = io.StringIO()
  writer = csv.DictWriter(out, COLUMNS, restval="", lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
  path = os.path.join(folder, FACTORS_CSV)
  atomic.write_text(path, out.getvalue())
  return path


def read_factors(folder: str) -> dict[str, dict] | None:
  """{subject_id: {column: value}} (numbers as floats, empty as None), or None without the file.
  `folder` is the dataset folder (or a manifest file: its folder)."""
  if os.path.isfile(folder):
    folder = os.path.dirname(os.path.abspath(folder))
  path = os.path.join(folder, FACTORS_CSV)
  if not os.path.isfile(path):
    return None
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  return {row["subject_id"]: {k: _value(k, v) for k, v in row.items()} for row in rows}


def _value(column: str, text: str | None):
  if text is None or text == "":
    return None
  return float(text) if column in NUMERIC else text
