"""Spectrogram targets and their inverse (docs/method.md "Data"; paper Sec. 3.2).

waveform (22,050 Hz) -> 100 windows of 21,000 samples slid evenly -> librosa mel power
-> dB -> one fixed global normalization to [0, 1] -> 64 x 64 (mel bins x time, low
frequency at row 0).

Choices where the paper is silent (saved with every model as `SpecParams.to_json()`):
- STFT: n_fft 1024 (46 ms), hop 330, Hann, centred; 64 mel bands (Slaney scale and norm,
  librosa's defaults) from 0 to 11,025 Hz. With these, a 21,000-sample window gives exactly
  64 frames, so the "resize to 64 x 64" of the paper is the identity and the target stays exactly
  invertible; other parameter sets that do not give 64 x 64 are refused.
- dB: `librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)`: absolute level, so loudness
  is kept.
- Normalization: y = clip((dB - db_min) / (db_max - db_min), 0, 1) with db_min = -80 dB,
  db_max = +40 dB for every example of every dataset (not fitted to data: a model's output means
  the same dB in any lab). Inverse: dB = db_min + y * (db_max - db_min); power = 10^(dB/10).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from cmri2spec_tf.base import numba_cache
from cmri2spec_tf.data.audio import SAMPLE_RATE, WINDOW_SAMPLES

SPEC_SIZE = 64


@dataclasses.dataclass(frozen=True)
class SpecParams:
  """Everything needed to make a target from audio and to turn a prediction back into sound."""

  sample_rate: int = SAMPLE_RATE
  window_samples: int = WINDOW_SAMPLES
  windows_per_recording: int = 100
  n_fft: int = 1024
  hop_length: int = 330
  n_mels: int = 64
  fmin: float = 0.0
  fmax: float = SAMPLE_RATE / 2
  db_min: float = -80.0
  db_max: float = 40.0
  amin: float = 1e-10

  def __post_init__(self):
    frames = 1 + self.window_samples // self.hop_length
    if self.n_mels != SPEC_SIZE or frames != SPEC_SIZE:
      raise ValueError(f"spectrogram parameters give {self.n_mels} x {frames}, not "
                       f"{SPEC_SIZE} x {SPEC_SIZE} (n_mels, 1 + window_samples // hop_length)")
    if not self.db_max > self.db_min:
      raise ValueError("db_max must be above db_min")

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "SpecParams":
    return cls(**json.loads(text))


def window_starts(n_samples: int, params: SpecParams = SpecParams(),
                  span: tuple[int, int] | None = None) -> np.ndarray:
  """Start sample of each window, spread evenly from the span's first sample to its end minus
  window_samples; the span is the whole recording by default (see `segment_span`)."""
  first, end = span or (0, n_samples)
  last = end - params.window_samples
  if last < first:
    raise ValueError(f"{end - first} samples is shorter than one {params.window_samples}-sample "
                     "window")
  return np.round(np.linspace(first, last, params.windows_per_recording)).astype(np.int64)


def segment_span(n_samples: int, start: int, end: int,
                 params: SpecParams = SpecParams()) -> tuple[int, int]:
  """The samples the windows of a segment [start, end) slide over: the segment itself when it
  holds at least one window; else the window_samples around its centre, taken from the
  recording's audio before and after it (shifted inwards at the recording's ends). So a short
  word gets 100 identical-length windows with context, as a whole recording does."""
  if end - start >= params.window_samples:
    return start, end
  if n_samples < params.window_samples:
    raise ValueError(f"{n_samples} samples is shorter than one {params.window_samples}-sample "
                     "window")
  first = (start + end) // 2 - params.window_samples // 2
  first = min(max(first, 0), n_samples - params.window_samples)
  return first, first + params.window_samples


def sliding_windows(waveform: np.ndarray, params: SpecParams = SpecParams(),
                    span: tuple[int, int] | None = None) -> np.ndarray:
  """[windows_per_recording, window_samples] crops of a mono waveform (within `span`)."""
  starts = window_starts(waveform.shape[-1], params, span)
  return np.stack([waveform[s:s + params.window_samples] for s in starts])


def mel_power(windows: np.ndarray, params: SpecParams = SpecParams()) -> np.ndarray:
  """librosa mel power spectrogram of [..., window_samples] -> [..., 64, 64]."""
  return numba_cache.librosa().feature.melspectrogram(
      y=np.asarray(windows, dtype=np.float32), sr=params.sample_rate, n_fft=params.n_fft,
      hop_length=params.hop_length, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax,
      power=2.0)


def normalize_power(power: np.ndarray, params: SpecParams = SpecParams()) -> np.ndarray:
  """Mel power -> dB (ref 1) -> [0, 1] by the fixed global mapping."""
  db = numba_cache.librosa().power_to_db(power, ref=1.0, amin=params.amin, top_db=None)
  return np.clip((db - params.db_min) / (params.db_max - params.db_min), 0.0, 1.0).astype(
      np.float32)


def normalized_to_db(normalized: np.ndarray, params: SpecParams = SpecParams()) -> np.ndarray:
  """Inverse of the normalization: [0, 1] -> dB."""
  return params.db_min + np.asarray(normalized, dtype=np.float32) * (params.db_max - params.db_min)


def normalized_to_power(normalized: np.ndarray, params: SpecParams = SpecParams()) -> np.ndarray:
  """[0, 1] -> mel power, the inverse of `normalize_power` (up to its clipping)."""
  return numba_cache.librosa().db_to_power(normalized_to_db(normalized, params), ref=1.0)


def targets_from_waveform(waveform: np.ndarray, params: SpecParams = SpecParams(),
                          span: tuple[int, int] | None = None) -> np.ndarray:
  """The training targets of one recording (or of the `span` of a segment, `segment_span`):
  float32 [windows_per_recording, 64, 64] in [0, 1]."""
  return normalize_power(mel_power(sliding_windows(waveform, params, span), params), params)


def overlap_add(starts_s, windows: np.ndarray, params: SpecParams, total: int) -> np.ndarray:
  """[64, total] mel timeline (frame j at sample j x hop_length) of windows [K, 64, 64] that
  start at starts_s seconds: each placed at its nearest frame, averaged where they overlap;
  frames no window covers are left out at the end."""
  frames_per_s = params.sample_rate / params.hop_length
  summed, counts = np.zeros((params.n_mels, total)), np.zeros(total)
  for start, window in zip(starts_s, np.asarray(windows).reshape(len(windows), params.n_mels, -1)):
    first = int(round(start * frames_per_s))
    width = min(window.shape[1], total - first)
    summed[:, first:first + width] += window[:, :width]
    counts[first:first + width] += 1
  covered = counts > 0
  return (summed[:, covered] / counts[covered]).astype(np.float32)


def samples_for(spectrogram: np.ndarray, params: SpecParams = SpecParams()) -> int:
  """Samples a spectrogram stands for: a [64, 64] window is window_samples; a recording's
  [64, N] is (N - 1) x hop_length (frame j at sample j x hop)."""
  frames = spectrogram.shape[-1]
  return params.window_samples if frames == SPEC_SIZE else (frames - 1) * params.hop_length


def waveform_from_normalized(normalized: np.ndarray, params: SpecParams = SpecParams(),
                             n_iter: int = 64, seed: int = 0,
                             length: int | None = None) -> np.ndarray:
  """Normalized [64, 64] (or [64, 64, 1]) -> waveform of window_samples by Griffin-Lim; a longer
  [64, N] (a whole recording) -> `length` samples (default (N - 1) x hop_length)."""
  spec = np.asarray(normalized, dtype=np.float32).reshape(params.n_mels, -1)
  librosa = numba_cache.librosa()
  magnitude = librosa.feature.inverse.mel_to_stft(
      normalized_to_power(spec, params), sr=params.sample_rate, n_fft=params.n_fft, power=2.0,
      fmin=params.fmin, fmax=params.fmax)
  length = length or samples_for(spec, params)
  waveform = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=params.hop_length,
                                n_fft=params.n_fft, length=length, random_state=seed)
  return waveform.astype(np.float32)
