"""The dataset manifest: `manifest.csv` with columns subject_id, word, mri, audio, and optional
frame_rate, start_s, end_s, audio_offset_s.

One row is one recording, or one segment of a recording, of one subject: `mri` is any MRI
source (sources.py: a DICOM cine, a video, image frames, an array, FILE.h5:/dataset) and `audio`
the sound of the same utterance (an audio file, or the video itself for its audio track), both
relative to the dataset folder (the folder of the manifest, when a manifest file is given
instead). A subject may have many rows (several recordings, many segments of one, repeated
words); the same row twice is refused. Paths must stay inside the dataset folder: absolute
paths and `..` that escape it are refused. Other columns (a lab's `notes`, `age`, ...) are kept
in `Record.extra` and not used.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import math
import os
import unicodedata
import re

from cmri2spec_tf.data.problems import Problem

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("subject_id", "word", "mri", "audio")
# frame_rate: frames per second of sources that do not carry it; start_s, end_s: one segment
# (a word) of a long recording, on the MRI clock; audio_offset_s: where the audio's first sample
# lies on the MRI clock (a known sync offset; 0 when not given).
OPTIONAL_COLUMNS = ("frame_rate", "start_s", "end_s", "audio_offset_s")


@dataclasses.dataclass(frozen=True)
class Record:
  """One manifest row with its paths resolved inside the dataset folder."""

  line: int
  subject_id: str
  word: str
  mri: str
  audio: str
  frame_rate: float | None = None
  start_s: float | None = None
  end_s: float | None = None
  audio_offset_s: float = 0.0
  extra: tuple[tuple[str, str], ...] = ()  # (column, value) of the columns we do not use

  @property
  def segment(self) -> tuple[float, float] | None:
    return None if self.start_s is None else (self.start_s, self.end_s)

  @property
  def recording_id(self) -> str:
    """subject:file[@start-end]: names a row in reports (a segment of a file, or the file)."""
    where = f"@{self.start_s:.3f}-{self.end_s:.3f}" if self.segment else ""
    return f"{self.subject_id}:{os.path.basename(self.mri.rstrip(os.sep))}{where}"


def locate(data_dir: str) -> tuple[str, str]:
  """(dataset folder, manifest file): `data_dir` is a folder holding manifest.csv, or a manifest
  file of any name, whose folder is then the one its paths are relative to."""
  if os.path.isfile(data_dir):
    return os.path.dirname(os.path.abspath(data_dir)), data_dir
  return data_dir, os.path.join(data_dir, MANIFEST_NAME)


def read_manifest(data_dir: str) -> tuple[list[Record], list[Problem]]:
  """Parses and checks the manifest (see `locate`); returns the good rows and every problem."""
  data_dir, path = locate(data_dir)
  if not os.path.isfile(path):
    return [], [Problem(path, "manifest not found (expected columns: " + ", ".join(COLUMNS) + ")")]
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      rows = list(csv.reader(f))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    return [], [Problem(path, f"unreadable manifest ({type(e).__name__}: {e})")]
  rows = [r for r in rows if any(cell.strip() for cell in r)]
  if not rows:
    return [], [Problem(path, "manifest is empty")]
  header = [h.strip() for h in rows[0]]
  problems = _header_problems(path, header)
  if any("missing column" in p.message for p in problems):
    return [], problems
  records = []
  for line, row in enumerate(rows[1:], start=2):
    record, row_problems = _parse_row(path, data_dir, header, line, row)
    problems += row_problems
    if record is not None:
      records.append(record)
  if not records and not problems:
    problems.append(Problem(path, "manifest has a header but no rows"))
  problems += _duplicate_row_problems(path, records)
  return records, problems


def _header_problems(path: str, header: list[str]) -> list[Problem]:
  problems = []
  missing = [c for c in COLUMNS if c not in header]
  if missing:
    problems.append(Problem(path, f"missing column(s) {', '.join(missing)} (have: {', '.join(header)})"))
  return problems


def _parse_row(path, data_dir, header, line, row):
  if len(row) != len(header):
    return None, [Problem(path, f"line {line}: {len(row)} fields, header has {len(header)}")]
  values = {h: cell.strip() for h, cell in zip(header, row)}
  empty = [c for c in COLUMNS if not values.get(c)]
  if empty:
    return None, [Problem(path, f"line {line}: empty {', '.join(empty)}")]
  problems = []
  resolved = {}
  for column in ("mri", "audio"):
    file, inside = split_hdf5(values[column]) if column == "mri" else (values[column], None)
    target, problem = resolve_inside(data_dir, file)
    if problem:
      problems.append(Problem(path, f"line {line}: {column} path {values[column]!r} {problem}"))
    resolved[column] = f"{target}:{inside}" if inside and target else target
  numbers = {}
  for column, positive in (("frame_rate", True), ("start_s", False), ("end_s", False),
                           ("audio_offset_s", None)):
    numbers[column], problem = _optional_number(values.get(column, ""), positive)
    if problem:
      problems.append(Problem(path, f"line {line}: {column} {problem}"))
  start, end = numbers["start_s"], numbers["end_s"]
  if not problems and (start is None) != (end is None):
    problems.append(Problem(path, f"line {line}: a segment needs both start_s and end_s"))
  elif not problems and start is not None and not end > start:
    problems.append(Problem(path, f"line {line}: segment end_s {end:g} is not after start_s "
                            f"{start:g}"))
  if problems:
    return None, problems
  extra = tuple((h, v) for h, v in values.items() if h not in COLUMNS + OPTIONAL_COLUMNS)
  return Record(line=line, subject_id=nfc(values["subject_id"]), word=text_key(values["word"]),
                mri=resolved["mri"], audio=resolved["audio"], frame_rate=numbers["frame_rate"],
                start_s=start, end_s=end, audio_offset_s=numbers["audio_offset_s"] or 0.0,
                extra=extra), []


def nfc(text: str) -> str:
  """Unicode NFC: "café" typed as one code point or as e + a combining accent is one text."""
  return unicodedata.normalize("NFC", text)


def text_key(text: str) -> str:
  """How labels and file stems are compared: NFC, case-folded (and NFC again, as case folding
  may decompose): "Café", "CAFÉ" and a decomposed "café" are one word."""
  return nfc(nfc(text).casefold())


def split_hdf5(entry: str) -> tuple[str, str | None]:
  """"file.h5:/a/b" -> ("file.h5", "/a/b"), the dataset inside an HDF5 file; else (entry, None)."""
  match = re.match(r"^(.*\.(?:h5|hdf5|hdf)):(/.*)$", entry, re.IGNORECASE)
  return (match[1], match[2]) if match else (entry, None)


def _optional_number(text: str, positive: bool | None):
  """(float or None, problem or None) of an optional numeric cell: > 0 (positive), >= 0 (False)
  or any finite number (None)."""
  if not text:
    return None, None
  try:
    value = float(text)
  except ValueError:
    return None, f"{text!r} is not a number"
  if not math.isfinite(value):
    return None, f"{text} is not a finite number"
  if positive and not value > 0:
    return None, f"{text} is not > 0"
  if positive is False and value < 0:
    return None, f"{text} is negative"
  return value, None


def resolve_inside(data_dir: str, relative: str):
  """Joins a manifest path to the dataset folder; refuses one that leaves it."""
  if os.path.isabs(relative) or relative.startswith(("/", "\\")):
    return None, "is absolute; manifest paths are relative to the dataset folder"
  root = os.path.realpath(data_dir)
  target = os.path.realpath(os.path.join(root, relative))
  if os.path.commonpath([root, target]) != root:
    return None, "points outside the dataset folder"
  return target, None


def _duplicate_row_problems(path: str, records: list[Record]) -> list[Problem]:
  """The same subject, files and segment twice (a copy-paste slip, not a repeated word)."""
  lines = collections.defaultdict(list)
  for r in records:
    lines[(r.subject_id, r.mri, r.audio, r.start_s, r.end_s)].append(r.line)
  return [Problem(path, f"duplicate row for subject_id {key[0]!r} on lines "
                  f"{', '.join(map(str, ls))} (same files and segment)")
          for key, ls in lines.items() if len(ls) > 1]
