"""The dataset manifest: `manifest.csv` with columns subject_id, word, mri, audio.

One row is one recording of one subject: `mri` is a DICOM cine (a folder of single-frame files
or one multi-frame file) and `audio` the WAV/FLAC of the same utterance, both relative to the
dataset folder. As in the paper's data (one sequence per subject), a subject_id appears once.
Paths must stay inside the dataset folder: absolute paths and `..` that escape it are refused.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import os

from cmri2spec_tf.data.problems import Problem

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("subject_id", "word", "mri", "audio")


@dataclasses.dataclass(frozen=True)
class Record:
  """One manifest row with its paths resolved inside the dataset folder."""

  line: int
  subject_id: str
  word: str
  mri: str
  audio: str


def read_manifest(data_dir: str) -> tuple[list[Record], list[Problem]]:
  """Parses and checks the manifest; returns the good rows and every problem found."""
  path = os.path.join(data_dir, MANIFEST_NAME)
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
  problems += _duplicate_subject_problems(path, records)
  return records, problems


def _header_problems(path: str, header: list[str]) -> list[Problem]:
  problems = []
  missing = [c for c in COLUMNS if c not in header]
  if missing:
    problems.append(Problem(path, f"missing column(s) {', '.join(missing)} (have: {', '.join(header)})"))
  unknown = [c for c in header if c not in COLUMNS]
  if unknown:
    problems.append(Problem(path, f"unknown column(s) {', '.join(unknown)}; expected exactly "
                            + ", ".join(COLUMNS)))
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
    target, problem = resolve_inside(data_dir, values[column])
    if problem:
      problems.append(Problem(path, f"line {line}: {column} path {values[column]!r} {problem}"))
    resolved[column] = target
  if problems:
    return None, problems
  return Record(line=line, subject_id=values["subject_id"], word=values["word"],
                mri=resolved["mri"], audio=resolved["audio"]), []


def resolve_inside(data_dir: str, relative: str):
  """Joins a manifest path to the dataset folder; refuses one that leaves it."""
  if os.path.isabs(relative) or relative.startswith(("/", "\\")):
    return None, "is absolute; manifest paths are relative to the dataset folder"
  root = os.path.realpath(data_dir)
  target = os.path.realpath(os.path.join(root, relative))
  if os.path.commonpath([root, target]) != root:
    return None, "points outside the dataset folder"
  return target, None


def _duplicate_subject_problems(path: str, records: list[Record]) -> list[Problem]:
  lines = collections.defaultdict(list)
  for r in records:
    lines[r.subject_id].append(r.line)
  return [Problem(path, f"duplicate subject_id {sid!r} on lines {', '.join(map(str, ls))} "
                  "(one recording per subject)")
          for sid, ls in lines.items() if len(ls) > 1]
