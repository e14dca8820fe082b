"""A dataset folder -> arrays the model trains on, through the cache.

`check_dataset` reads everything and lists every problem (the `check_data` command);
`load_dataset` is what training uses: it refuses a dataset with problems, with the same
messages, before anything is trained, and decodes each recording only once per cache.

Sync (docs/method.md, "Timing"): the audio's first sample lies on the MRI clock at the row's
audio_offset_s plus the audio file's own start (a container track's start time). Its duration
is compared with the MRI recording's where that is known (every source but a DICOM cine
series): beyond SYNC_WARN (the larger of 0.1 s and 5 %) a warning naming both files and both
durations, beyond SYNC_ERROR (the larger of 0.5 s and 20 %) a problem. A whole recording with a
known span takes its audio windows from the audio within that span.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np

from cmri2spec_tf.base.progress import Progress
from cmri2spec_tf.data import audio as audio_lib
from cmri2spec_tf.data import cache as cache_lib
from cmri2spec_tf.data import dicom, sources
from cmri2spec_tf.data import manifest as manifest_lib
from cmri2spec_tf.data import spectrogram, splits
from cmri2spec_tf.data.problems import DataError, DatasetProblems, Problem, not_found


SYNC_WARN = (0.1, 0.05)  # (seconds, share of the MRI's duration): the larger is the tolerance
SYNC_ERROR = (0.5, 0.20)  # beyond the larger of these the recording is refused


@dataclasses.dataclass(frozen=True)
class Timing:
  """A recording's two clocks placed on one: the MRI's span and the audio's, in seconds."""

  mri_start_s: float | None
  mri_duration_s: float | None
  audio_start_s: float
  audio_duration_s: float

  @property
  def mismatch_s(self) -> float | None:
    """The audio's duration minus the MRI's (None where the MRI's is unknown)."""
    return None if self.mri_duration_s is None else self.audio_duration_s - self.mri_duration_s

  def to_array(self) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in dataclasses.astuple(self)], np.float64)

  @classmethod
  def from_array(cls, values) -> "Timing":
    a, b, c, d = (None if not np.isfinite(v) else float(v) for v in np.asarray(values))
    return cls(a, b, c or 0.0, d or 0.0)


@dataclasses.dataclass(frozen=True)
class RecordSummary:
  """One line of check_data's table."""

  subject_id: str
  word: str
  cine: dicom.CineInfo
  audio: audio_lib.AudioInfo
  segment: tuple[float, float] | None = None
  timing: Timing | None = None
  warnings: tuple[str, ...] = ()
  mri: str = ""  # the row's MRI entry


@dataclasses.dataclass
class ArrayDataset:
  """All recordings as arrays: mri float16 [R, 26, 128, 128], spectrograms float16 [R, W, 64, 64]."""

  subject_ids: list[str]
  words: list[str]
  mri: np.ndarray
  spectrograms: np.ndarray
  params: spectrogram.SpecParams
  recording_ids: list[str] | None = None  # subject:file[@start-end] (manifest.Record)
  pair_labels: list[str] | None = None  # what same-word pairs match (data/clips.py); words
  clip_audio: np.ndarray | None = None  # float32 [R, window_samples]: a clip's own sound

  @property
  def pair_keys(self) -> list[str]:
    """What the KL pairs match on: the words, or the clips' stimulus and position."""
    return self.words if self.pair_labels is None else self.pair_labels

  def __post_init__(self):
    if self.recording_ids is None:
      self.recording_ids = [f"{s}:{i}" for i, s in enumerate(self.subject_ids)]

  def __len__(self) -> int:
    return len(self.subject_ids)

  def subset(self, subject_ids) -> "ArrayDataset":
    """The recordings of the given subjects, in dataset order."""
    wanted = set(subject_ids)
    rows = [i for i, s in enumerate(self.subject_ids) if s in wanted]
    labels = None if self.pair_labels is None else [self.pair_labels[i] for i in rows]
    audio = None if self.clip_audio is None else self.clip_audio[rows]
    return ArrayDataset([self.subject_ids[i] for i in rows], [self.words[i] for i in rows],
                        self.mri[rows], self.spectrograms[rows], self.params,
                        [self.recording_ids[i] for i in rows], labels, audio)

  def fold(self, scheme: str, index: int, seed: int = 0):
    """(training, held-out) subsets of fold `index` of the split `scheme` ("loso" or a number
    of folds, data/splits.py); the folds depend on `seed` only, not on any training seed."""
    fold = splits.select_fold(self.subject_ids, self.words, scheme, index, seed)
    return self.subset(fold.train), self.subset(fold.test)

  def set_aside(self, k: int, seed: int = 0):
    """(the rest, `k` subjects set aside for choosing the epoch: data/splits.py)."""
    chosen = set(splits.selection_subjects(self.subject_ids, self.words, k, seed))
    return (self.subset(s for s in dict.fromkeys(self.subject_ids) if s not in chosen),
            self.subset(chosen))


def read_record(record: manifest_lib.Record, params: spectrogram.SpecParams):
  """Decodes one row: (mri float32 [26,128,128], targets float32 [W,64,64], summary)."""
  cine = sources.read_mri(record.mri, record.frame_rate, record.segment)
  sound = audio_lib.read_audio(record.audio)
  timing = Timing(cine.info.start_s, cine.info.duration_s, record.audio_offset_s + sound.start_s,
                  sound.duration_s)
  warnings = sync_warnings(record, timing)
  span = audio_span(record, timing, len(sound.waveform), params)
  targets = spectrogram.targets_from_waveform(sound.waveform, params, span)
  summary = RecordSummary(record.subject_id, record.word, cine.info, sound.info, record.segment,
                          timing, warnings, record.mri)
  return cine.frames, targets, summary


def sync_warnings(record: manifest_lib.Record, timing: Timing) -> tuple[str, ...]:
  """The sync check of one row: () in tolerance, a warning beyond SYNC_WARN, DataError (naming
  both files and durations) beyond SYNC_ERROR."""
  mismatch = timing.mismatch_s
  if mismatch is None:
    return ()
  mri_s = timing.mri_duration_s
  text = (f"audio {timing.audio_duration_s:.3f} s ({record.audio}) vs MRI {mri_s:.3f} s "
          f"({record.mri}): {mismatch:+.3f} s ({mismatch / mri_s:+.0%})")
  if abs(mismatch) > max(SYNC_ERROR[0], SYNC_ERROR[1] * mri_s):
    raise DataError(record.audio, f"{text}; beyond the larger of {SYNC_ERROR[0]:g} s and "
                    f"{SYNC_ERROR[1]:.0%}: a truncated or misexported take")
  if abs(mismatch) > max(SYNC_WARN[0], SYNC_WARN[1] * mri_s):
    return (f"{record.audio}: {text}; beyond the larger of {SYNC_WARN[0]:g} s and "
            f"{SYNC_WARN[1]:.0%}",)
  return ()


def check_dataset(data_dir: str, params: spectrogram.SpecParams = spectrogram.SpecParams(),
                  cache_dir: str | None = None):
  """Reads every file; returns (summaries of good rows, all problems). With `cache_dir`, what
  was read is stored there as training would store it (training then decodes nothing again)."""
  records, problems = manifest_lib.read_manifest(data_dir)
  summaries = []
  for record in records:
    try:
      frames, targets, summary = read_record(record, params)
    except DataError as e:
      problems.append(e.problem)
      continue
    summaries.append(summary)
    if cache_dir:
      cache_lib.save(cache_dir, record_key(record, params),
                     _cache_arrays(frames, targets, summary))
  return summaries, problems


def load_dataset(data_dir: str, params: spectrogram.SpecParams = spectrogram.SpecParams(),
                 cache_dir: str | None = None, verbose: bool = True) -> ArrayDataset:
  """Arrays of every recording, from the cache where possible. Raises DatasetProblems."""
  cache_dir = cache_dir or cache_lib.default_cache_dir()
  records, problems = manifest_lib.read_manifest(data_dir)
  if problems:
    raise DatasetProblems(problems)
  mri, targets, decoded, warned = [], [], 0, {}
  progress = Progress("data", len(records)) if verbose else None
  for i, record in enumerate(records):
    try:
      arrays, was_decoded = _cached_record(record, params, cache_dir)
      warned |= dict.fromkeys(sync_warnings(record, Timing.from_array(arrays["timing"])))
    except DataError as e:
      problems.append(e.problem)
      continue
    decoded += was_decoded
    mri.append(arrays["mri"])
    targets.append(arrays["spectrograms"])
    if progress:
      progress.update(i + 1, f"recordings ({decoded} decoded, {len(mri) - decoded} from cache)")
  if progress:
    progress.close()
  for warning in warned if verbose else ():
    print(f"warning: {warning}", file=sys.stderr)
  if problems:
    raise DatasetProblems(problems)
  return ArrayDataset([r.subject_id for r in records], [r.word for r in records],
                      np.stack(mri), np.stack(targets), params,
                      [r.recording_id for r in records])


def _cached_record(record, params, cache_dir):
  # Same messages as the readers give, before hashing needs the files.
  if not os.path.exists(manifest_lib.split_hdf5(record.mri)[0]):
    raise not_found(record.mri, "MRI series")
  if not os.path.isfile(record.audio):
    raise not_found(record.audio, "audio file")
  key = record_key(record, params)
  arrays = cache_lib.load(cache_dir, key)
  if arrays is not None:
    return arrays, False
  frames, targets, summary = read_record(record, params)
  arrays = _cache_arrays(frames, targets, summary)
  cache_lib.save(cache_dir, key, arrays)
  return arrays, True


def record_key(record: manifest_lib.Record, params: spectrogram.SpecParams) -> str:
  """The cache key of a row's files, parameters and the part of the files it picks."""
  return cache_lib.record_key(record.mri, record.audio, params.to_json(), _segment_key(record))


def _cache_arrays(frames, targets, summary) -> dict[str, np.ndarray]:
  """C-ordered, as the cache gives them back: a run that decodes and one that reads the cache
  then sum in the same order (librosa's mel frames come transposed; float32 sums such as the
  output bias's mean differ in the last bits between the two layouts)."""
  return {"mri": np.ascontiguousarray(frames, np.float16),
          "spectrograms": np.ascontiguousarray(targets, np.float16),
          "timing": summary.timing.to_array()}


def format_problems(problems: list[Problem]) -> str:
  return "\n".join(f"PROBLEM {p}" for p in problems)


def format_summary(summaries: list[RecordSummary]) -> str:
  """The per-subject table check_data prints. `audio@ s`: where the audio's first sample lies
  on the MRI clock; `dur diff s`: the audio's duration minus the MRI's."""
  header = (f"{'subject':<12} {'word':<8} {'source':<7} {'frames':>6} {'fps':>6} "
            f"{'seconds':>7} {'segment s':>13} {'matrix':>9} {'spacing mm':>12} {'order':<16} "
            f"{'audio':>8} {'rate':>6} {'ch':>2} {'audio@ s':>8} {'dur diff s':>10} format")
  lines = [header]
  for s in summaries:
    spacing = "-" if s.cine.spacing_mm is None else "%.2fx%.2f" % s.cine.spacing_mm
    fps = "-" if s.cine.frame_rate is None else f"{s.cine.frame_rate:.2f}"
    seconds = "-" if s.cine.duration_s is None else f"{s.cine.duration_s:.2f}"
    segment = "-" if s.segment is None else "%.2f-%.2f" % s.segment
    timing = s.timing or Timing(None, None, 0.0, 0.0)
    mismatch = "-" if timing.mismatch_s is None else f"{timing.mismatch_s:+.3f}"
    lines.append(f"{s.subject_id:<12} {s.word:<8} {s.cine.kind:<7} {s.cine.frames:>6} {fps:>6} "
                 f"{seconds:>7} {segment:>13} {s.cine.rows:>4}x{s.cine.columns:<4} "
                 f"{spacing:>12} {s.cine.ordered_by:<16} {s.audio.samples:>8} "
                 f"{s.audio.sample_rate:>6} {s.audio.channels:>2} "
                 f"{timing.audio_start_s:>8.3f} {mismatch:>10} {s.audio.subtype}")
  return "\n".join(lines)


def format_notes(summaries: list[RecordSummary]) -> list[str]:
  """check_data's lines under the table, each once: sync warnings, audio that starts off the
  MRI clock's zero (where it is placed), frames folders' ignored files."""
  notes = dict.fromkeys(f"WARNING {w}" for s in summaries for w in s.warnings)
  for summary in summaries:
    if summary.timing is not None and abs(summary.timing.audio_start_s) >= 0.0005:
      notes[f"audio of {summary.mri}: its first sample lies at "
            f"{summary.timing.audio_start_s:.3f} s on the MRI clock (applied)"] = None
    if summary.cine.ignored:
      notes[f"ignored in {summary.mri}: {', '.join(summary.cine.ignored)} (not image frames)"] \
          = None
  return list(notes)


def audio_span(record: manifest_lib.Record, timing: Timing, n_samples: int,
               params: spectrogram.SpecParams) -> tuple[int, int] | None:
  """The audio samples a row's windows slide over (spectrogram.segment_span), the MRI clock moved
  onto the audio's by the audio's start (`timing`): a segment's span, an error when it lies
  outside the audio; a whole recording's span where its MRI span is known (within the audio),
  else all of the audio (None)."""
  rate = params.sample_rate
  if record.segment is None:
    if timing.mri_start_s is None or timing.mri_duration_s is None:
      return None
    start = max(0, round((timing.mri_start_s - timing.audio_start_s) * rate))
    end = min(n_samples, round((timing.mri_start_s + timing.mri_duration_s
                                - timing.audio_start_s) * rate))
    return spectrogram.segment_span(n_samples, start, max(end, start), params)
  start = round((record.start_s - timing.audio_start_s) * rate)
  end = round((record.end_s - timing.audio_start_s) * rate)
  if start < 0 or end > n_samples:
    raise DataError(record.audio, f"segment {record.start_s:g}-{record.end_s:g} s lies where "
                    f"there is no audio: the audio covers {timing.audio_start_s:.3f}-"
                    f"{timing.audio_start_s + n_samples / rate:.3f} s on the MRI clock (its "
                    f"start {timing.audio_start_s:g} s: audio_offset_s {record.audio_offset_s:g}"
                    " + the file's own start)")
  return spectrogram.segment_span(n_samples, start, end, params)


def audio_windows(data_dir: str, recording_ids: list[str], windows: list[int],
                  params: spectrogram.SpecParams) -> np.ndarray:
  """float32 [R, len(windows), window_samples]: the audio of the given windows (indices into a
  recording's windows_per_recording) of each recording, read again from its file: the sound a
  window's target spectrogram was made from (the cache keeps only the spectrograms)."""
  records, problems = manifest_lib.read_manifest(data_dir)
  if problems:
    raise DatasetProblems(problems)
  by_id = {r.recording_id: r for r in records}
  missing = [i for i in recording_ids if i not in by_id]
  if missing:
    raise DatasetProblems([Problem(manifest_lib.locate(data_dir)[1],
                                   f"no row for recording {', '.join(missing)}")])
  out = []
  for recording_id in recording_ids:
    record = by_id[recording_id]
    sound = audio_lib.read_audio(record.audio)
    timing = _timing_for_span(record, sound)
    span = audio_span(record, timing, len(sound.waveform), params)
    out.append(spectrogram.sliding_windows(sound.waveform, params, span)[list(windows)])
  return np.stack(out).astype(np.float32)


def window_audio(data: ArrayDataset, data_dir: str, rows: list[int],
                 windows: list[int]) -> np.ndarray:
  """float32 [len(rows), len(windows), window_samples]: the sound of the given windows of the
  given examples: a clip's own (kept with it), else read again from the files (audio_windows)."""
  if data.clip_audio is not None:
    return data.clip_audio[rows][:, None].astype(np.float32)[:, [0] * len(windows)]
  return audio_windows(data_dir, [data.recording_ids[r] for r in rows], windows, data.params)


def _timing_for_span(record: manifest_lib.Record, sound: audio_lib.Audio) -> Timing:
  """What audio_span needs of a row's clocks, reading no more than that: a segment needs only
  the audio's start; a whole recording also the MRI's span, which only a non-DICOM source has
  (its frames are read for it: the cache keeps spectrograms, not times of a file's frames)."""
  audio_start = record.audio_offset_s + sound.start_s
  if record.segment is not None or sources.kind_of(record.mri) == "dicom":
    return Timing(None, None, audio_start, sound.duration_s)
  info = sources.read_mri(record.mri, record.frame_rate).info
  return Timing(info.start_s, info.duration_s, audio_start, sound.duration_s)


def _segment_key(record: manifest_lib.Record) -> str:
  """What of a row besides its files changes what is read ("" for a plain row: old keys)."""
  if record.segment is None and record.frame_rate is None and not record.audio_offset_s:
    return ""
  return repr((record.frame_rate, record.start_s, record.end_s, record.audio_offset_s))


def report(data_dir: str, cache_dir: str | None = None) -> int:
  """Prints check_data's report (table, totals; problems on stderr); returns the exit status.
  `cache_dir`: also store what was read there (check_dataset)."""
  summaries, problems = check_dataset(data_dir, cache_dir=cache_dir)
  if summaries:
    print(format_summary(summaries))
  for note in format_notes(summaries):
    print(note)
  words = sorted({s.word for s in summaries})
  print(f"\n{len(summaries)} usable recording(s), words: {', '.join(words) or '-'}; "
        f"{len(problems)} problem(s)")
  if problems:
    print(format_problems(problems), file=sys.stderr)
    return 1
  return 0
