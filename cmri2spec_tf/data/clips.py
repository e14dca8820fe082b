"""Time-aligned clips of whole recordings: the `--pairing=time` training protocol.

A long recording (any non-DICOM source with its audio; a manifest row without start_s/end_s)
is cut into clips of one window's duration (window_samples / sample_rate: 0.952 s at the
default parameters) starting every `hop_s` seconds. On the recording's one clock (the MRI's;
the audio's first sample at audio_offset_s plus the file's own start, dataset.Timing), clip k
spans [t0 + k hop_s, t0 + k hop_s + clip_s), where t0 is the later of the MRI's first frame and
the audio's first sample; clips end before the earlier of the two ends. Its 26 frames are
sampled evenly over exactly that span (sources.read_mri with the span as a segment, as
`predict` reads a recording's clips), and its target is the mel spectrogram of exactly the
window_samples audio samples that start at the span's start: one input, one target. No word
alignment is needed.

Silent clips are skipped: a clip is silent when the RMS of its audio is more than
SILENCE_BELOW_DB below the recording's loudest clip's (the pauses between utterances, a
recording's lead-in). Neighbouring clips are read together (a video is decoded from one seek
per few seconds of clips, sources.read_segments, never whole) and cached one entry per clip.

Pairs for the KL term (eq. 2) without word labels: a clip's pair label is its recording's
stimulus (the manifest's `stimulus` column, else its `word`: `index` writes each layout's
stimulus there, the task or sentence from the file stem) and its position: the clip's centre as
a share of the recording's duration, in steps of one hop of the stimulus's median recording.
Two subjects reading the same stimulus are matched at the same relative position (their
recordings' lengths stand in for their speaking rates; a DTW on the audio would follow rate
changes within a recording too, at the price of pairing by the target the model is to predict).
Where no stimulus is read by two subjects, no pair is same-label and the KL term is off.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Iterator

import numpy as np

from cmri2spec_tf.base.progress import Progress
from cmri2spec_tf.data import audio as audio_lib
from cmri2spec_tf.data import cache as cache_lib
from cmri2spec_tf.data import dataset, sources, spectrogram
from cmri2spec_tf.data import manifest as manifest_lib
from cmri2spec_tf.data.problems import DataError, DatasetProblems

SILENCE_BELOW_DB = 30.0
STIMULUS_COLUMN = "stimulus"


@dataclasses.dataclass(frozen=True)
class Clip:
  """One clip of a recording: its span on the recording's clock and its audio's first sample."""

  start_s: float
  end_s: float
  first_sample: int  # into the audio file's samples


def clip_seconds(params: spectrogram.SpecParams) -> float:
  """One window's duration: what a clip spans."""
  return params.window_samples / params.sample_rate


def plan_clips(timing: dataset.Timing, waveform: np.ndarray, params: spectrogram.SpecParams,
               hop_s: float, voiced_only: bool = True) -> list[Clip]:
  """The recording's clips in time order: those that are not silent (see the module docstring),
  or with `voiced_only=False` all of them (continuous synthesis)."""
  if timing.mri_start_s is None or timing.mri_duration_s is None:
    return []
  clip_s, rate = clip_seconds(params), params.sample_rate
  first = max(timing.mri_start_s, timing.audio_start_s)
  last = min(timing.mri_start_s + timing.mri_duration_s,
             timing.audio_start_s + len(waveform) / rate) - clip_s
  if last < first - 1e-9:
    return []
  starts = first + hop_s * np.arange(int(np.floor((last - first) / hop_s + 1e-9)) + 1)
  clips = []
  for start in starts:
    sample = min(int(round((start - timing.audio_start_s) * rate)),
                 len(waveform) - params.window_samples)
    clips.append(Clip(float(start), float(start + clip_s), sample))
  return _voiced(clips, waveform, params) if voiced_only else clips


def _voiced(clips: list[Clip], waveform: np.ndarray, params) -> list[Clip]:
  if not clips:
    return clips
  rms = np.array([np.sqrt(np.mean(np.square(
      waveform[c.first_sample:c.first_sample + params.window_samples], dtype=np.float64)))
                  for c in clips])
  level_db = 20 * np.log10(np.maximum(rms, 1e-10))
  return [c for c, db in zip(clips, level_db) if db >= level_db.max() - SILENCE_BELOW_DB]


def clip_frames(record: manifest_lib.Record, clips: list[Clip]) -> Iterator[np.ndarray]:
  """The MRI of each clip in order, float32 [26, 128, 128] over its span, neighbouring clips read
  together (sources.read_segments: a video decoded from one seek for them)."""
  return sources.read_segments(record.mri, record.frame_rate,
                               [(clip.start_s, clip.end_s) for clip in clips])


def clip_target(waveform: np.ndarray, clip: Clip, params: spectrogram.SpecParams) -> np.ndarray:
  """The clip's target: float32 [64, 64], its window of audio as a normalized mel spectrogram
  (one window at a time: a stack's mel projection may sum in another order)."""
  window = waveform[clip.first_sample:clip.first_sample + params.window_samples]
  return spectrogram.normalize_power(spectrogram.mel_power(window[None], params), params)[0]


def recording_timing(record: manifest_lib.Record, sound: audio_lib.Audio) -> dataset.Timing:
  """The recording's two clocks on one (the MRI's span from its container or frame count,
  sources.recording_span_of), refused where they disagree as for training on words."""
  if record.segment is not None:
    raise DataError(record.mri, "time-aligned clips are cut from whole recordings: this row "
                    "has start_s/end_s (a word segment); use --pairing=word for segments")
  if sources.kind_of(record.mri) == "dicom":
    raise DataError(record.mri, "a DICOM cine series is one utterance, not a recording to cut "
                    "into clips; use --pairing=word")
  mri_start, mri_duration = sources.recording_span_of(record.mri, record.frame_rate)
  timing = dataset.Timing(mri_start, mri_duration, record.audio_offset_s + sound.start_s,
                          sound.duration_s)
  dataset.sync_warnings(record, timing)  # refuses a take whose clocks disagree
  return timing


def stimulus_of(record: manifest_lib.Record) -> str:
  """What the recording says: the manifest's `stimulus` column, else its `word`."""
  return dict(record.extra).get(STIMULUS_COLUMN) or record.word


def load_clips(data_dir: str, params: spectrogram.SpecParams, hop_s: float,
               cache_dir: str | None = None, verbose: bool = True) -> dataset.ArrayDataset:
  """Every recording's clips as a dataset of one window per clip (spectrograms [C, 1, 64, 64]),
  through the per-clip cache. `words` holds each clip's stimulus (folds are stratified by it),
  `pair_labels` its stimulus and position (the KL pairs). Raises DatasetProblems."""
  cache_dir = cache_dir or cache_lib.default_cache_dir()
  records, problems = manifest_lib.read_manifest(data_dir)
  if problems:
    raise DatasetProblems(problems)
  progress = Progress("clips", len(records)) if verbose else None
  per_recording, decoded = [], 0
  for i, record in enumerate(records):
    try:
      clips, arrays, was_decoded = _recording_clips(record, params, hop_s, cache_dir)
    except DataError as e:
      problems.append(e.problem)
      continue
    per_recording.append((record, clips, arrays))
    decoded += was_decoded
    if progress:
      progress.update(i + 1, f"recordings ({decoded} clips decoded)")
  if progress:
    progress.close()
  if problems:
    raise DatasetProblems(problems)
  return _as_dataset(per_recording, params, hop_s, data_dir)


def load_examples(pairing: str, data_dir: str, params: spectrogram.SpecParams, hop_s: float,
                  cache_dir: str | None = None, verbose: bool = True) -> dataset.ArrayDataset:
  """A run's examples: recordings or word segments (pairing "word", dataset.load_dataset) or
  time-aligned clips of whole recordings ("time", `load_clips`, which also says what it cut)."""
  if pairing != "time":
    return dataset.load_dataset(data_dir, params, cache_dir, verbose=verbose)
  data = load_clips(data_dir, params, hop_s, cache_dir, verbose=verbose)
  if verbose:
    describe(data, hop_s)
  return data


def _recording_clips(record, params, hop_s, cache_dir):
  """(clips, [(mri, target)] per clip, clips decoded): from the cache where it has them."""
  sound = audio_lib.read_audio(record.audio)
  timing = recording_timing(record, sound)
  clips = plan_clips(timing, sound.waveform, params, hop_s)
  base = dataset.record_key(record, params)
  keys = [hashlib.sha256(f"{base}:clip:{clip.start_s:.6f}:{clip.first_sample}".encode()
                        ).hexdigest() for clip in clips]
  cached = {key: cache_lib.load(cache_dir, key) for key in keys}
  missing = [(clip, key) for clip, key in zip(clips, keys) if cached[key] is None]
  for (clip, key), frames in zip(missing, clip_frames(record, [clip for clip, _ in missing])):
    target = clip_target(sound.waveform, clip, params)
    window = sound.waveform[clip.first_sample:clip.first_sample + params.window_samples]
    cached[key] = {"mri": np.ascontiguousarray(frames, np.float16),  # as the cache gives them
                   "spectrograms": np.ascontiguousarray(target[None], np.float16),  # back
                   "audio": window.astype(np.float32)}
    cache_lib.save(cache_dir, key, cached[key])
  arrays = [(cached[k]["mri"], cached[k]["spectrograms"], cached[k]["audio"]) for k in keys]
  return clips, arrays, len(missing)


def _as_dataset(per_recording, params, hop_s, data_dir) -> dataset.ArrayDataset:
  per_recording = [(r, clips, arrays) for r, clips, arrays in per_recording if clips]
  if not per_recording:
    raise DatasetProblems([DataError(manifest_lib.locate(data_dir)[1], "no recording has a "
                                     "voiced clip (whole recordings with their audio, at least "
                                     "one window long)").problem])
  spans = [_span(clips) for _, clips, _ in per_recording]
  lengths = collections.defaultdict(list)
  for (record, _, _), (_, duration) in zip(per_recording, spans):
    lengths[stimulus_of(record)].append(duration)
  subject_ids, words, labels, ids, mri, spectrograms, sound = [], [], [], [], [], [], []
  for (record, clips, arrays), (start, duration) in zip(per_recording, spans):
    stimulus = stimulus_of(record)
    steps = max(1, round(float(np.median(lengths[stimulus])) / hop_s))
    for clip, (frames, target, audio) in zip(clips, arrays):
      position = (clip.start_s - start) / duration
      subject_ids.append(record.subject_id)
      words.append(stimulus)
      labels.append(f"{stimulus}@{round(position * steps)}")
      ids.append(f"{record.recording_id}@{clip.start_s:.3f}-{clip.end_s:.3f}")
      mri.append(frames)
      spectrograms.append(target)
      sound.append(audio)
  return dataset.ArrayDataset(subject_ids, words, np.stack(mri), np.stack(spectrograms), params,
                              ids, pair_labels=labels, clip_audio=np.stack(sound))


def _span(clips: list[Clip]) -> tuple[float, float]:
  """(first voiced clip's start, from it to the last one's start): a clip's position is its
  start's share of that span (0 the first, 1 the last), so silence around does not shift it."""
  start = clips[0].start_s
  return start, max(clips[-1].start_s - start, 1e-9)


def shared_stimuli(data: dataset.ArrayDataset) -> list[str]:
  """The stimuli read by at least two subjects (those give the KL term its pairs)."""
  readers = collections.defaultdict(set)
  for subject, word in zip(data.subject_ids, data.words):
    readers[word].add(subject)
  return sorted(w for w, s in readers.items() if len(s) >= 2)


def describe(data: dataset.ArrayDataset, hop_s: float) -> None:
  """The line a time-aligned run prints about its clips and its pairs."""
  shared = shared_stimuli(data)
  pairs = (f"KL pairs: same stimulus at the same relative position ({len(shared)} stimuli read "
           "by several subjects)" if shared else "KL pairs: none (no stimulus is read by two "
           "subjects): PairDisen is off")
  print(f"time-aligned clips: {len(data)} of {clip_seconds(data.params):.3f} s every "
        f"{hop_s:g} s from {len(set(data.subject_ids))} subjects; {pairs}")
