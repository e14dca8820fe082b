"""Whole-utterance evaluation of a time-aligned run (`--pairing=time`, data/clips.py).

Each held-out recording is synthesized continuously, as `predict` does for a video: clips of one
window every hop_s over the span both clocks cover (silent ones included: the timeline has no
gaps), each translated into one window, the windows overlap-added on the mel timeline
(spectrogram.overlap_add). It is scored on its whole length against the recording's own audio
over the same span: L1 and MSE over the mel timeline, and STOI, ESTOI, MCD, MCD-DTW and PESQ of
the waveform of the timeline (Griffin-Lim, and the run's --vocoder) against the audio. The
truth's own timeline through each vocoder is the ceiling.

Baselines, given the same input: the mean training clip (its window overlap-added everywhere),
and the nearest-neighbour clip per position (for each clip, the target of the training clip
whose 26 frames are closest). Clips are read, translated and looked up a chunk at a time, so a
long recording is never decoded whole.
"""

from __future__ import annotations

import numpy as np

from cmri2spec_tf.data import audio as audio_lib
from cmri2spec_tf.data import clips as clips_lib
from cmri2spec_tf.data import manifest as manifest_lib
from cmri2spec_tf.data import spectrogram
from cmri2spec_tf.data.dataset import ArrayDataset
from cmri2spec_tf.data.problems import DatasetProblems, Problem
from cmri2spec_tf.evaluation import baselines
from cmri2spec_tf.speech import speech_metrics

CHUNK = 16  # clips read and translated at once
CEILING = "truth"


def heldout_records(data_dir: str, heldout_subjects) -> list[manifest_lib.Record]:
  """The manifest rows (whole recordings) of the held-out subjects."""
  wanted = set(heldout_subjects)
  records, _ = manifest_lib.read_manifest(data_dir)
  return [r for r in records if r.subject_id in wanted]


def synthesize(record: manifest_lib.Record, translate, train: ArrayDataset | None,
               params: spectrogram.SpecParams, hop_s: float, model: str = "cmri2spec",
               index: baselines.MriIndex | None = None) -> dict:
  """{"truth", `model` and the baselines: [64, N] timelines, "audio": the recording's samples of that
  span, "start_s": the span's start on the recording's clock}. `translate`: [B, 26, 128, 128, 1]
  -> [B, 64, 64(, 1)]. `train`: the training clips the baselines look up (None: no baselines);
  `index`: their MriIndex (built here when not given)."""
  sound = audio_lib.read_audio(record.audio)
  timing = clips_lib.recording_timing(record, sound)
  hop_s = min(hop_s, clips_lib.clip_seconds(params))  # clips that leave no gap on the timeline
  planned = clips_lib.plan_clips(timing, sound.waveform, params, hop_s, voiced_only=False)
  if not planned:
    return {}
  first, end = planned[0].first_sample, planned[-1].first_sample + params.window_samples
  audio = sound.waveform[first:end]
  truth = spectrogram.normalize_power(spectrogram.mel_power(audio, params), params)
  starts = [(c.first_sample - first) / params.sample_rate for c in planned]
  windows = {model: []}
  if train is not None:  # the baselines: the nearest clip per position, the mean clip everywhere
    index = index or baselines.MriIndex(train)
    mean = baselines.mean_window(train)
    windows |= {"nearest_neighbour": [],
                "mean": [np.broadcast_to(mean, (len(planned),) + mean.shape)]}
  for i in range(0, len(planned), CHUNK):
    frames = np.stack(list(clips_lib.clip_frames(record, planned[i:i + CHUNK])))
    predicted = np.asarray(translate(frames[..., None]), np.float32)
    windows[model].append(predicted.reshape(len(frames), params.n_mels, -1))
    if train is not None:
      picks = index.nearest(frames)
      windows["nearest_neighbour"].append(train.spectrograms[picks, 0].astype(np.float32))
  timelines = {name: spectrogram.overlap_add(starts, np.concatenate(parts), params,
                                             truth.shape[-1])
               for name, parts in windows.items()}
  covered = min(t.shape[-1] for t in timelines.values())  # the last window's end
  timelines = {name: t[:, :covered] for name, t in {CEILING: truth, **timelines}.items()}
  return {**timelines, "audio": audio, "start_s": planned[0].start_s}


def score(synthesized: dict, record: manifest_lib.Record, vocoder_list,
          params: spectrogram.SpecParams) -> tuple[dict[str, dict], dict[tuple, np.ndarray]]:
  """({method or CEILING: one row of scores for this recording} (CEILING: speech metrics only),
  {(method or CEILING, vocoder name): the waveform scored})."""
  base = {"recording_id": record.recording_id, "subject_id": record.subject_id,
          "word": clips_lib.stimulus_of(record)}
  truth, audio = synthesized[CEILING], synthesized["audio"]
  rows, sounds = {}, {}
  for name, timeline in synthesized.items():
    if name in ("audio", "start_s"):
      continue
    row = dict(base)
    if name != CEILING:
      error = truth - timeline
      row |= {"l1": float(np.abs(error).mean()), "mse": float(np.square(error).mean())}
    for vocoder in vocoder_list:
      sound = sounds[name, vocoder.name] = vocoder(timeline)
      for metric, value in speech_metrics.audio_scores(audio, sound, params.sample_rate).items():
        row[f"{vocoder.name}_{metric}"] = value
    rows[name] = row
  return rows, sounds


def evaluate(records, translate, train: ArrayDataset, params: spectrogram.SpecParams,
             hop_s: float, vocoder_list, model: str = "cmri2spec"
             ) -> tuple[dict[str, list[dict]], dict[str, dict]]:
  """({method or CEILING: recording rows}, {subject: what the listening report plays of its
  first recording: recording_id, audio, the truth's and the model's timelines, the sounds})."""
  rows: dict[str, list[dict]] = {}
  examples = {}
  index = baselines.MriIndex(train)
  for record in records:
    synthesized = synthesize(record, translate, train, params, hop_s, model, index)
    if not synthesized:
      continue
    scored, sounds = score(synthesized, record, vocoder_list, params)
    for name, row in scored.items():
      rows.setdefault(name, []).append(row)
    if record.subject_id not in examples:
      examples[record.subject_id] = {
          "recording_id": record.recording_id, "audio": synthesized["audio"],
          "truth": synthesized[CEILING], "prediction": synthesized[model],
          "sounds": {key: sound for key, sound in sounds.items() if key[0] in (CEILING, model)}}
  return rows, examples


def evaluate_heldout(manifest: str, translate, train_subjects, heldout_subjects,
                     params: spectrogram.SpecParams, hop_s: float, cache_dir: str | None,
                     vocoder_list, model: str = "cmri2spec",
                     train: ArrayDataset | None = None) -> tuple[dict, dict]:
  """`evaluate` on the held-out subjects' whole recordings in `manifest`; the baselines look up the training subjects' clips of the same manifest (the same
  for a word-segment run and a time-aligned one, so both are scored alike)."""
  if train is None:  # `train`: the run's own training clips, when `manifest` is its data
    train = clips_lib.load_clips(manifest, params, hop_s, cache_dir,
                                 verbose=False).subset(train_subjects)
  if not len(train):
    raise DatasetProblems([Problem(manifest, "none of the run's training subjects has a "
                                   "recording here: the baselines have nothing to look up")])
  rows, examples = evaluate(heldout_records(manifest, heldout_subjects), translate, train,
                            params, hop_s, vocoder_list, model)
  if not rows:
    raise DatasetProblems([Problem(manifest, "no recording of the held-out subjects "
                                   f"({', '.join(sorted(heldout_subjects))}) to synthesize")])
  return rows, examples
