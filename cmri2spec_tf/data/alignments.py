"""Word segments from Praat TextGrid alignments: long recordings -> a manifest of words.

For each row of a manifest of long recordings, the alignment is `<stem>.TextGrid` in the
alignments folder (any case of the extension), where stem is the file name of the row's `mri`
without its extension (else of its `audio`). Its word tier (named "words" or "word", any case,
else the first interval tier whose name contains "word", or the one `tier` names; a phone tier
works the same way) gives (start, end, label) intervals, read with praatio. Silences and pauses
("", "sil", "sp", "spn", "pau", "<p:>", "#", ...) are left out; labels and file stems are
compared as `manifest.text_key` gives them (Unicode NFC, case-folded: "Café" typed composed or
decomposed is one word). The chosen intervals, widened by `padding` on each side (within the recording's start),
become rows with start_s and end_s, clamped to the recording (0 to the TextGrid's end); every
other column of the row is kept. The label is the
row's word, so the pairwise KL's "same word" pairs two subjects' segments of the same label.

Choosing words: `words` (a list), or the `top` labels said by the most subjects (ties broken by
the number of segments, then alphabetically), or every label; only segments whose unpadded
duration lies within [min_duration, max_duration] count.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os

from cmri2spec_tf.data.manifest import text_key
from cmri2spec_tf.data.problems import DataError

SILENCES = {"", "sil", "sp", "spn", "pau", "<p:>", "<sil>", "#", "_", "<s>", "</s>", "noise",
            "{sl}", "{lg}", "{ns}"}
TEXTGRID_EXTENSION = ".textgrid"


@dataclasses.dataclass(frozen=True)
class Interval:
  start_s: float
  end_s: float
  label: str
  recording_end_s: float | None = None  # the TextGrid's end: where padding stops

  @property
  def duration(self) -> float:
    return self.end_s - self.start_s


@dataclasses.dataclass(frozen=True)
class Choice:
  """Which segments to keep."""

  words: tuple[str, ...] = ()
  top: int | None = None
  min_duration: float = 0.1
  max_duration: float = 2.0
  padding: float = 0.0
  tier: str | None = None


def textgrids_in(folder: str) -> dict[str, str]:
  """{text_key of the file name: path} of the folder's TextGrids (any case of the extension,
  names in any Unicode normal form)."""
  return {text_key(name): os.path.join(folder, name) for name in os.listdir(folder)
          if text_key(name).endswith(TEXTGRID_EXTENSION)}


def find_textgrid(by_name: dict[str, str], row: dict) -> str | None:
  """The alignment of a manifest row: <stem of mri, else of audio>.TextGrid (`textgrids_in`)."""
  for column in ("mri", "audio"):
    stem = os.path.splitext(os.path.basename(row[column].split(".h5:")[0].rstrip("/")))[0]
    found = by_name.get(text_key(stem) + TEXTGRID_EXTENSION)
    if found:
      return found
  return None


def read_word_intervals(path: str, tier: str | None = None) -> list[Interval]:
  """The labelled, non-silent intervals of the word tier (see the module docstring)."""
  from praatio import textgrid

  try:
    grid = textgrid.openTextgrid(path, includeEmptyIntervals=False)
  except Exception as e:  # praatio raises its own and plain errors for malformed files
    raise DataError(path, f"unreadable TextGrid ({type(e).__name__}: {e})") from e
  interval_tiers = [name for name in grid.tierNames
                    if type(grid.getTier(name)).__name__ == "IntervalTier"]
  name = _pick_tier(interval_tiers, tier)
  if name is None:
    wanted = f"a tier named {tier!r}" if tier else "a word tier"
    raise DataError(path, f"no {wanted} among its interval tiers ({', '.join(interval_tiers)})")
  end = float(grid.maxTimestamp)
  return [Interval(float(e.start), float(e.end), text_key(e.label.strip()), end)
          for e in grid.getTier(name).entries
          if text_key(e.label.strip()) not in SILENCES and e.end > e.start]


def _pick_tier(names: list[str], wanted: str | None) -> str | None:
  lowered = {n.lower(): n for n in names}
  if wanted:
    return lowered.get(wanted.lower())
  for exact in ("words", "word"):
    if exact in lowered:
      return lowered[exact]
  return next((n for n in names if "word" in n.lower()), None)


def choose_words(intervals_by_row: dict[int, list[Interval]], subjects: dict[int, str],
                 choice: Choice) -> list[str]:
  """The labels to keep: the given words, or the `top` said by most subjects, or all."""
  counted = collections.defaultdict(lambda: [set(), 0])
  for row, intervals in intervals_by_row.items():
    for interval in intervals:
      if choice.min_duration <= interval.duration <= choice.max_duration:
        counted[interval.label][0].add(subjects[row])
        counted[interval.label][1] += 1
  if choice.words:
    return [text_key(w) for w in choice.words]
  ranked = sorted(counted, key=lambda w: (-len(counted[w][0]), -counted[w][1], w))
  return ranked[:choice.top] if choice.top else ranked


def segment_rows(rows: list[dict], intervals_by_row: dict[int, list[Interval]],
                 words: list[str], choice: Choice) -> list[dict]:
  """One output row per kept interval, in recording then time order."""
  keep = set(words)
  out = []
  for index, row in enumerate(rows):
    for interval in intervals_by_row.get(index, []):
      if interval.label not in keep or not (
          choice.min_duration <= interval.duration <= choice.max_duration):
        continue
      start = max(0.0, interval.start_s - choice.padding)
      end = interval.end_s + choice.padding
      if interval.recording_end_s is not None:
        end = min(end, interval.recording_end_s)
      out.append(row | {"word": interval.label, "start_s": f"{start:.4f}", "end_s": f"{end:.4f}"})
  return out


def write_manifest(rows: list[dict], header: list[str]) -> str:
  """CSV text with `header` first, then start_s and end_s when they are not in it."""
  columns = list(header) + [c for c in ("start_s", "end_s") if c not in header]
  out = io.StringIO()
  writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
  writer.writeheader()
  writer.writerows(rows)
  return out.getvalue()


def segment_manifest(manifest: str, alignments: str, out: str, choice: Choice) -> dict:
  """Reads a manifest of long recordings and their alignments, writes `out` (atomically): a
  manifest of word segments in the same folder layout. Returns what it did: segments per word,
  subjects per word, rows without an alignment. DataError for what cannot work."""
  from cmri2spec_tf.base import atomic

  if not os.path.isfile(manifest):
    raise DataError(manifest, "manifest not found")
  if not os.path.isdir(alignments):
    raise DataError(alignments, "alignments folder not found")
  with open(manifest, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    header, rows = list(reader.fieldnames or []), list(reader)
  missing = [c for c in ("subject_id", "word", "mri", "audio") if c not in header]
  if missing:
    raise DataError(manifest, f"missing column(s) {', '.join(missing)}")
  rows = [_relative_to(row, os.path.dirname(os.path.abspath(manifest)),
                       os.path.dirname(os.path.abspath(out)), manifest) for row in rows]
  intervals, unaligned, grids = {}, [], textgrids_in(alignments)
  for index, row in enumerate(rows):
    grid = find_textgrid(grids, row)
    if grid is None:
      unaligned.append(row["mri"])
      continue
    intervals[index] = read_word_intervals(grid, choice.tier)
  words = choose_words(intervals, {i: rows[i]["subject_id"] for i in intervals}, choice)
  segments = segment_rows(rows, intervals, words, choice)
  if not segments:
    raise DataError(manifest, f"no segment of the words {', '.join(words) or '(none)'} within "
                    f"{choice.min_duration:g}-{choice.max_duration:g} s in the alignments of "
                    f"{alignments}")
  atomic.write_text(out, write_manifest(segments, header))
  per_word = {w: [s for s in segments if s["word"] == w] for w in words}
  return {"segments": len(segments), "unaligned": unaligned,
          "words": {w: (len(rows_), len({r["subject_id"] for r in rows_}))
                    for w, rows_ in per_word.items() if rows_}}


def _relative_to(row: dict, manifest_dir: str, out_dir: str, manifest: str) -> dict:
  """The row's paths, rewritten relative to the output manifest's folder (they may not leave
  it: manifest paths stay inside their dataset folder)."""
  if manifest_dir == out_dir:
    return row
  moved = dict(row)
  for column in ("mri", "audio"):
    relative = os.path.relpath(os.path.join(manifest_dir, row[column]), out_dir)
    if relative.startswith(".."):
      raise DataError(manifest, f"{row[column]} would lie outside the folder of the output "
                      "manifest: write it in the dataset folder (or a folder above it)")
    moved[column] = relative
  return moved
