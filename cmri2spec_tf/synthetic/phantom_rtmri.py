"""The phantom as real-time MRI: each subject says several words in a row in one recording.

Each subject (the traits of phantom.py: F0, vocal-tract length, anatomy, noise) says its word,
the other word, and its word again, each with its own jittered timing, with 0.3 s pauses before,
between and after (background noise; the articulators hold the nearest word's edge). The
images are rendered at 50 frames per second over the whole recording from the same articulator
tracks that drive the audio. Written per subject:

  subjects/<id>/<id>_take.mp4   H.264 video (8-bit grey, 50 fps) with the sound as an AAC track
  subjects/<id>/<id>_take.wav   the same sound, 16-bit PCM at 22,050 Hz
  subjects/<id>/<id>_take_masks.npz  the articulators' label map of every frame (phantom.LABELS)
  alignments/<id>_take.TextGrid a "words" tier with the three words (and empty pauses)
  recordings.csv                subject_id, word (the three words joined by +), mri, audio
  subjects.csv                  each subject's factors (data/factors.py), timing left out

so that `segment --manifest=recordings.csv --alignments=alignments` cuts it into words, and the
whole real-time path (video -> segments -> check_data -> train -> evaluate) runs on it.
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction

import numpy as np
import soundfile

from cmri2spec_tf.base import atomic
from cmri2spec_tf.data import factors
from cmri2spec_tf.synthetic import phantom

FPS = 50
PAUSE_S = 0.3
TAKE = "{}_take"


def words_of(main_word: str) -> list[str]:
  """The subject's word, the other word, its word again."""
  other = next(w for w in phantom.WORDS if w != main_word)
  return [main_word, other, main_word]


def record_subject(index: int, subject_id: str, main_word: str, seed: int):
  """(waveform, uint8 frames [T, 128, 128], [(word, start_s, end_s)], speaker, uint8 labels
  [T, 128, 128]) of one subject's take (speaker: the phantom.Subject whose traits every word
  shares)."""
  rng = np.random.default_rng([seed, index, 1])
  speaker = phantom.make_subject(subject_id, main_word, rng)
  traits = {k: getattr(speaker, k) for k in ("f0_hz", "vocal_tract_cm", "anatomy_scale",
                                             "anatomy_shift_px", "noise_dbfs", "peak")}
  pause = int(PAUSE_S * phantom.SAMPLE_RATE)
  noise_level = 10 ** (speaker.noise_dbfs / 20)
  parts, words, clock = [rng.normal(0, noise_level, pause)], [], pause
  for word in words_of(main_word):
    utterance = dataclasses.replace(phantom.make_subject(subject_id, word, rng), **traits)
    parts += [phantom.synthesize_audio(utterance, rng), rng.normal(0, noise_level, pause)]
    words.append((utterance, clock / phantom.SAMPLE_RATE))
    clock += utterance.n_samples + pause
  waveform = np.concatenate(parts).astype(np.float32)
  times = np.arange(int(len(waveform) / phantom.SAMPLE_RATE * FPS)) / FPS
  articulators = _articulators_at(times, words)
  frames = phantom.render_articulators(speaker, articulators, rng)
  intervals = [(u.word, start, start + u.n_samples / phantom.SAMPLE_RATE) for u, start in words]
  labels = phantom.render_labels(speaker, articulators)
  return waveform, np.round(frames / 16).astype(np.uint8), intervals, speaker, labels


def _articulators_at(times: np.ndarray, words) -> np.ndarray:
  """[T, 6]: at each time the articulators of the word then spoken, or in a pause those of the
  nearest word's edge (one track computation per word)."""
  starts = np.array([start for _, start in words])
  ends = starts + np.array([u.n_samples for u, _ in words]) / phantom.SAMPLE_RATE
  distance = np.maximum(starts[None] - times[:, None], times[:, None] - ends[None]).clip(0)
  nearest = np.argmin(distance, axis=1)
  articulators = np.zeros((len(times), len(phantom.ARTICULATORS)))
  for k, (utterance, start) in enumerate(words):
    at = nearest == k
    local = np.clip(times[at] - start, 0.0, ends[k] - start)
    articulators[at] = phantom.segment_tracks(utterance, local)["articulators"]
  return articulators


def write_video(path: str, frames: np.ndarray, waveform: np.ndarray) -> None:
  """H.264 grey video at FPS with the waveform as a mono AAC track, written atomically."""
  import av

  with atomic.atomic_path(path, suffix=".mp4") as tmp:
    with av.open(tmp, "w", format="mp4") as container:
      video = container.add_stream("libx264", rate=Fraction(FPS))
      video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
      video.options = {"crf": "18"}
      audio = container.add_stream("aac", rate=phantom.SAMPLE_RATE, layout="mono")
      for grey in frames:
        frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
        for packet in video.encode(frame):
          container.mux(packet)
      for start in range(0, len(waveform), 1024):
        frame = av.AudioFrame.from_ndarray(waveform[None, start:start + 1024], format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = phantom.SAMPLE_RATE, start
        for packet in audio.encode(frame):
          container.mux(packet)
      for stream in (audio, video):
        for packet in stream.encode():
          container.mux(packet)


def write_textgrid(path: str, intervals, duration: float) -> None:
  from praatio import textgrid
  from praatio.utilities.constants import Interval

  grid = textgrid.Textgrid()
  grid.addTier(textgrid.IntervalTier("words", [Interval(s, e, w) for w, s, e in intervals], 0,
                                     duration))
  with atomic.atomic_path(path, suffix=".TextGrid") as tmp:
    grid.save(tmp, format="long_textgrid", includeBlankSpaces=True)


def generate_subject(out_dir: str, index: int, subject_id: str, word: str, seed: int):
  """Writes one subject's take (video, wav, TextGrid); returns (its manifest row, its factors)."""
  waveform, frames, intervals, speaker, labels = record_subject(index, subject_id, word, seed)
  name = TAKE.format(subject_id)
  folder = os.path.join(out_dir, "subjects", subject_id)
  os.makedirs(folder, exist_ok=True)
  write_video(os.path.join(folder, name + ".mp4"), frames, waveform)
  phantom.write_masks(os.path.join(folder, name + "_masks.npz"), labels, fps=FPS)
  with atomic.atomic_path(os.path.join(folder, name + ".wav"), suffix=".wav") as tmp:
    soundfile.write(tmp, waveform, phantom.SAMPLE_RATE, subtype="PCM_16")
  write_textgrid(os.path.join(out_dir, "alignments", name + ".TextGrid"), intervals,
                 len(waveform) / phantom.SAMPLE_RATE)
  words = "+".join(w for w, _, _ in intervals)
  row = f"{subject_id},{words},subjects/{subject_id}/{name}.mp4,subjects/{subject_id}/{name}.wav\n"
  return row, phantom.factor_row(speaker, with_timing=False) | {"word": words}


def generate(out_dir: str, n_ageese: int, n_asouk: int, seed: int = 0, workers: int = 1) -> int:
  """Writes every subject's take and recordings.csv; returns the number of subjects."""
  plan = phantom.subject_plan(n_ageese, n_asouk)
  if not plan:
    raise ValueError("the phantom needs at least one subject")
  results = phantom.run_subjects(generate_subject, out_dir, plan, seed, workers)
  atomic.write_text(os.path.join(out_dir, "recordings.csv"),
                    "subject_id,word,mri,audio\n" + "".join(row for row, _ in results))
  factors.write_factors(out_dir, [subject for _, subject in results])
  return len(results)
