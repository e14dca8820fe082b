"""Speech audio: WAV/FLAC at any rate, width and channel count, or the audio track of a video
(mp4, avi, mov, mkv, ...: real-time MRI datasets ship the speech inside the video) -> mono
float32 at 22,050 Hz.

Decoding is soundfile's (libsndfile) for audio files and PyAV's (FFmpeg) for the audio track of
a container; resampling is librosa's (soxr, high quality). Channels are averaged. The checks
below are the ones `check_data` reports.

Time: `Audio.start_s` is where the first sample lies on the file's own clock: 0 for an audio
file, and for a container's track the first decoded frame's presentation time (a track that
starts after the video, through the stream's start time or an edit list, says so here). Where
that clock is the MRI's (the audio of the MRI's own video) the samples are placed by it; a
separate file's clock is placed on the MRI's by the manifest's audio_offset_s.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import soundfile

from cmri2spec_tf.base import numba_cache
from cmri2spec_tf.data.problems import DataError, not_found

SAMPLE_RATE = 22050
WINDOW_SAMPLES = 21000  # the paper's crop length (Sec. 3.2)
SILENCE_PEAK = 1e-4  # peak |x| below this (-80 dBFS) is silence
CLIP_LEVEL = 0.999  # |x| at or above this is a clipped sample ...
CLIP_SHARE = 0.001  # ... and more than 0.1 % of them is a clipped recording
DECODERS = ("soundfile", "tfio")
# Containers whose audio track PyAV decodes (libsndfile reads WAV, FLAC, OGG, MP3, ... itself).
CONTAINER_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".m4a",
                        ".aac")


@dataclasses.dataclass(frozen=True)
class AudioInfo:
  """The file as it was: rate, channels, length in its own samples, sample format."""

  sample_rate: int
  channels: int
  samples: int
  subtype: str


@dataclasses.dataclass(frozen=True)
class Audio:
  """Mono float32 waveform at 22,050 Hz and what the file looked like."""

  waveform: np.ndarray
  info: AudioInfo
  start_s: float = 0.0  # the first sample's time on the file's own clock

  @property
  def duration_s(self) -> float:
    return len(self.waveform) / SAMPLE_RATE


def read_audio(path: str | os.PathLike, decoder: str = "soundfile") -> Audio:
  """Reads, checks and converts one recording. Raises DataError naming the file.

  `decoder` decodes the samples: "soundfile" (libsndfile: WAV, FLAC, ...) or "tfio"
  (tensorflow-io's audio ops; the optional extra, see tfio_decoders.py).
  """
  path = os.fspath(path)
  if decoder not in DECODERS:
    raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
  if not os.path.isfile(path):
    raise not_found(path, "audio file")
  start_s = 0.0
  if os.path.splitext(path)[1].lower() in CONTAINER_EXTENSIONS and decoder == "soundfile":
    data, rate, subtype, start_s = read_track(path)
  else:
    try:
      subtype = soundfile.info(path).subtype
      if decoder == "soundfile":
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile: unknown format, truncated, lying header
      raise DataError(path, f"unreadable audio file ({type(e).__name__}: {e})") from e
  if decoder == "tfio":
    from cmri2spec_tf.data import tfio_decoders

    data, rate = tfio_decoders.wav_samples(path)
  info = AudioInfo(sample_rate=int(rate), channels=data.shape[1], samples=data.shape[0],
                   subtype=subtype)
  check_waveform(path, data)
  mono = data.mean(axis=1)
  if rate != SAMPLE_RATE:
    mono = numba_cache.librosa().resample(mono, orig_sr=rate, target_sr=SAMPLE_RATE)
  if mono.shape[0] < WINDOW_SAMPLES:
    raise DataError(path, f"audio is {mono.shape[0]} samples at {SAMPLE_RATE} Hz, shorter than "
                    f"the {WINDOW_SAMPLES}-sample window")
  return Audio(waveform=mono.astype(np.float32), info=info, start_s=start_s)


def read_track(path: str) -> tuple[np.ndarray, int, str, float]:
  """(float32 [samples, channels], rate, codec, start time in s) of a container's first audio
  track (PyAV); the start is the first decoded frame's presentation time."""
  import av  # local: only containers need FFmpeg

  try:
    with av.open(path) as container:
      if not container.streams.audio:
        raise DataError(path, "no audio track in this file (the manifest names it as the audio)")
      stream = container.streams.audio[0]
      planar = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
      chunks, start = [], None
      for frame in container.decode(stream):
        if start is None and frame.time is not None:
          start = float(frame.time)
        chunks += [out.to_ndarray() for out in planar.resample(frame)]
      chunks += [out.to_ndarray() for out in planar.resample(None)]
      codec = stream.codec_context.name.upper()
      rate = int(stream.rate)
  except DataError:
    raise
  except (av.FFmpegError, OSError, ValueError) as e:
    raise DataError(path, f"unreadable audio track ({type(e).__name__}: {e})") from e
  if not chunks:
    raise DataError(path, "the audio track holds no decodable sample")
  return np.concatenate(chunks, axis=1).T.astype(np.float32), rate, codec, start or 0.0


def check_waveform(path: str, data: np.ndarray) -> None:
  """NaN/inf, silence and clipping, judged on the samples as stored (all channels)."""
  if data.size == 0:
    raise DataError(path, "audio file holds no samples")
  if not np.all(np.isfinite(data)):
    raise DataError(path, "audio holds NaN or infinite samples")
  peak = float(np.max(np.abs(data)))
  if peak < SILENCE_PEAK:
    raise DataError(path, f"audio is silent (peak {peak:.2g} < {SILENCE_PEAK:g})")
  clipped_share = float(np.mean(np.abs(data) >= CLIP_LEVEL))
  if clipped_share > CLIP_SHARE:
    raise DataError(path, f"audio is clipped ({clipped_share:.1%} of samples at full scale)")


def wav_bytes(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
  """A mono waveform as the bytes of a 16-bit WAV file (clipped to [-1, 1])."""
  import io

  out = io.BytesIO()
  soundfile.write(out, np.clip(waveform, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
  return out.getvalue()
