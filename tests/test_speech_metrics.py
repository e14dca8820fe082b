"""The speech metrics (speech_metrics.py) on signals whose answer is known."""

import numpy as np
import pytest

from cmri2spec_tf.speech import speech_metrics

RATE = 22050


def _voice(seconds=1.0, f0=140.0, seed=0):
  """A vowel-like test signal: harmonics of f0 with a -6 dB/octave tilt, syllable-rate on/off
  envelope (STOI needs modulation), a little noise."""
  t = np.arange(int(seconds * RATE)) / RATE
  voiced = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 40) if k * f0 < 8000)
  envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t - np.pi / 2)) ** 2
  noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
  return (0.1 * voiced * envelope + noise).astype(np.float32)


def test_identical_signals_score_perfectly():
  x = _voice()
  scores = speech_metrics.audio_scores(x, x, RATE)
  assert scores["stoi"] == pytest.approx(1.0, abs=1e-6)
  assert scores["estoi"] == pytest.approx(1.0, abs=1e-6)
  assert scores["mcd"] == pytest.approx(0.0, abs=1e-9)
  assert scores["mcd_dtw"] == pytest.approx(0.0, abs=1e-9)
  assert scores["pesq"] > 4.5  # the top of wideband PESQ's scale, 4.64


def test_gain_changes_nothing_but_noise_lowers_every_score_monotonically():
  x = _voice()
  assert speech_metrics.mcd(x, 0.3 * x, RATE) == pytest.approx(0.0, abs=1e-3)  # c0 left out
  assert speech_metrics.stoi(x, 0.3 * x, RATE) == pytest.approx(1.0, abs=1e-6)
  rng = np.random.default_rng(1)
  noise = rng.standard_normal(x.size).astype(np.float32) * np.std(x)
  by_snr = [speech_metrics.audio_scores(x, x + level * noise, RATE) for level in (0.1, 0.5, 2.0)]
  for metric in ("stoi", "estoi", "pesq"):
    values = [s[metric] for s in by_snr]
    assert values[0] > values[1] > values[2], (metric, values)
  mcds = [s["mcd"] for s in by_snr]
  assert 0 < mcds[0] < mcds[1] < mcds[2]
  assert by_snr[2]["stoi"] < 0.8


def test_a_pure_delay_lowers_stoi_and_mcd_but_not_mcd_dtw():
  x = _voice()
  delay = int(0.03 * RATE)
  delayed = np.concatenate([np.zeros(delay, np.float32), x[:-delay]])
  scores = speech_metrics.audio_scores(x, delayed, RATE)
  assert scores["stoi"] < 0.9
  assert scores["mcd_dtw"] < 0.25 * scores["mcd"]


def test_mcd_is_the_documented_formula():
  pause = np.zeros(int(0.25 * RATE), np.float32)  # silence: left out of the MCD
  x, y = (np.concatenate([pause, _voice(f0=f0, seed=seed)]) for f0, seed in ((140, 0), (180, 3)))
  ref, energy = speech_metrics.mel_cepstra(x, RATE)
  est, _ = speech_metrics.mel_cepstra(y, RATE)
  assert ref.shape[1] == speech_metrics.MCD_ORDER
  speech = energy >= energy.max() - speech_metrics.SPEECH_RANGE_DB
  expected = np.mean(10 / np.log(10) * np.sqrt(2 * ((ref - est) ** 2).sum(1)))  # every frame
  frames = np.mean(10 / np.log(10) * np.sqrt(2 * ((ref - est)[speech] ** 2).sum(1)))
  assert speech_metrics.mcd(x, y, RATE) == pytest.approx(frames)
  assert speech.sum() < len(speech) and frames != pytest.approx(expected)  # silence left out


def test_pesq_of_silence_is_none_and_means_skip_it():
  x = _voice()
  assert speech_metrics.pesq_wideband(np.zeros_like(x), np.zeros_like(x), RATE) is None
  means = speech_metrics.mean_scores([{"stoi": 0.5, "estoi": 0.4, "mcd": 3.0, "mcd_dtw": 2.0,
                                       "pesq": None},
                                      {"stoi": 0.7, "estoi": 0.6, "mcd": 5.0, "mcd_dtw": 4.0,
                                       "pesq": 2.0}])
  assert means == pytest.approx({"stoi": 0.6, "estoi": 0.5, "mcd": 4.0, "mcd_dtw": 3.0,
                                 "pesq": 2.0})
