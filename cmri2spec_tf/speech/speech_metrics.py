"""How speech is scored in the field, on waveforms (docs/method.md "Speech metrics").

  STOI, ESTOI  short-time objective intelligibility (Taal et al. 2011) and its extended form
               (Jensen & Taal 2016), 0..1, higher is better: pystoi, which resamples both
               signals to its 10 kHz internally (scipy's polyphase resampler) and drops frames
               40 dB below the reference's loudest, as the reference implementation does.
  MCD          mel-cepstral distortion in dB, lower is better (Kubichek 1993):
               (10 / ln 10) * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2) per frame, averaged over the
               reference's speech frames. Cepstra: 80 Slaney mel bands from librosa (n_fft 1024,
               hop 110 = 5 ms at 22,050 Hz), natural log of the band amplitudes (floor 1e-5), an
               orthonormal DCT-II, coefficients 1-24 (c0, the loudness, is left out). Speech
               frames: those of the reference within 40 dB of its loudest frame. `mcd` compares
               frame t with frame t (the window's audio and the synthesis share their clock);
               `mcd_dtw` first aligns the two cepstra sequences by dynamic time warping
               (librosa.sequence.dtw, Euclidean) and averages over the path.
  PESQ         wideband PESQ (ITU-T P.862.2) MOS-LQO, 1.04..4.64, higher is better: the `pesq`
               package at 16 kHz (both signals resampled 22,050 -> 16,000 Hz by scipy's
               polyphase filter, 320/441). PESQ estimates and removes delays itself. None when
               the package is not installed (it builds from source: a C compiler is needed) or
               when PESQ finds no utterance.

A pure delay between reference and estimate lowers STOI, ESTOI and MCD (no alignment: by design,
as a translated window must be in time with its audio); MCD-DTW absorbs it; PESQ only partly
(on a 1 s test signal delayed by 30 ms: STOI 1.00 -> 0.67, MCD 0 -> 20 dB, MCD-DTW 0 -> 1.8 dB,
PESQ 4.64 -> 2.6).

Why not the `mel-cepstral-distance` package: it frames and resamples audio its own way from
files; librosa gives the same formula on our arrays in a few lines, with the settings above.
"""

from __future__ import annotations

import numpy as np

from cmri2spec_tf.base import numba_cache

AUDIO_METRICS = ("stoi", "estoi", "mcd", "mcd_dtw", "pesq")
HIGHER_IS_BETTER = {"stoi": True, "estoi": True, "mcd": False, "mcd_dtw": False, "pesq": True}

MCD_ORDER = 24
MCD_N_MELS = 80
MCD_N_FFT = 1024
MCD_HOP = 110
MCD_FLOOR = 1e-5
SPEECH_RANGE_DB = 40.0
PESQ_RATE = 16000


def stoi(reference: np.ndarray, estimate: np.ndarray, rate: int, extended: bool = False) -> float:
  """STOI (or ESTOI with `extended`) of `estimate` against `reference`, same length and rate."""
  from pystoi import stoi as pystoi_stoi

  reference, estimate = _same_length(reference, estimate)
  return float(pystoi_stoi(reference, estimate, rate, extended=extended))


def mel_cepstra(waveform: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
  """(cepstra [frames, 24] = c1..c24, frame energy in dB [frames]) as the MCD defines them."""
  librosa = numba_cache.librosa()
  import scipy.fft

  power = librosa.feature.melspectrogram(
      y=np.asarray(waveform, np.float32), sr=rate, n_fft=MCD_N_FFT, hop_length=MCD_HOP,
      n_mels=MCD_N_MELS, power=2.0)
  log_amplitude = 0.5 * np.log(np.maximum(power, MCD_FLOOR ** 2))
  cepstra = scipy.fft.dct(log_amplitude, type=2, norm="ortho", axis=0)[1:MCD_ORDER + 1].T
  energy_db = 10 * np.log10(np.maximum(power.sum(axis=0), 1e-20))
  return cepstra.astype(np.float64), energy_db


def mcd(reference: np.ndarray, estimate: np.ndarray, rate: int, dtw: bool = False) -> float:
  """Mel-cepstral distortion in dB over the reference's speech frames (frame by frame, or
  along the DTW path with `dtw`)."""
  librosa = numba_cache.librosa()

  ref_cepstra, ref_energy = mel_cepstra(reference, rate)
  est_cepstra, _ = mel_cepstra(estimate, rate)
  speech = ref_energy >= ref_energy.max() - SPEECH_RANGE_DB
  if dtw:
    _, path = librosa.sequence.dtw(X=ref_cepstra.T, Y=est_cepstra.T, metric="euclidean")
    path = path[speech[path[:, 0]]]
    diff = ref_cepstra[path[:, 0]] - est_cepstra[path[:, 1]]
  else:
    n = min(len(ref_cepstra), len(est_cepstra))
    keep = speech[:n]
    diff = ref_cepstra[:n][keep] - est_cepstra[:n][keep]
  return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(diff ** 2, axis=1))))


def pesq_available() -> bool:
  try:
    import pesq  # noqa: F401
  except ImportError:
    return False
  return True


def pesq_wideband(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float | None:
  """Wideband PESQ at 16 kHz; None without the package or when PESQ finds no utterance."""
  if not pesq_available():
    return None
  import pesq
  from scipy.signal import resample_poly

  reference, estimate = _same_length(reference, estimate)
  if not (np.any(reference) and np.any(estimate)):
    return None  # all zeros: nothing to hear (and the package would divide by zero)
  if rate != PESQ_RATE:
    divisor = np.gcd(PESQ_RATE, rate)
    reference = resample_poly(reference, PESQ_RATE // divisor, rate // divisor)
    estimate = resample_poly(estimate, PESQ_RATE // divisor, rate // divisor)
  try:
    return float(pesq.pesq(PESQ_RATE, reference.astype(np.float32), estimate.astype(np.float32),
                           "wb"))
  except pesq.PesqError:
    return None


def audio_scores(reference: np.ndarray, estimate: np.ndarray, rate: int) -> dict:
  """Every metric of AUDIO_METRICS for one pair of waveforms (pesq may be None)."""
  return {"stoi": stoi(reference, estimate, rate),
          "estoi": stoi(reference, estimate, rate, extended=True),
          "mcd": mcd(reference, estimate, rate),
          "mcd_dtw": mcd(reference, estimate, rate, dtw=True),
          "pesq": pesq_wideband(reference, estimate, rate)}


def mean_known(values) -> float | None:
  """Mean leaving out the Nones (PESQ without its package or without an utterance); None when
  nothing is left."""
  values = [v for v in values if v is not None]
  return float(np.mean(values)) if values else None


def mean_scores(rows: list[dict]) -> dict:
  """Mean of each metric over rows, leaving out the Nones (a metric None everywhere is None)."""
  return {metric: mean_known(r.get(metric) for r in rows) for metric in AUDIO_METRICS}


def _same_length(reference: np.ndarray, estimate: np.ndarray):
  n = min(len(reference), len(estimate))
  return (np.asarray(reference, np.float64)[:n], np.asarray(estimate, np.float64)[:n])
