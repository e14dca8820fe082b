"""Mel targets: librosa parity, sliding windows, the normalization and its inverse."""

import librosa
import numpy as np
import pytest

from cmri2spec_tf.data import audio, spectrogram
from cmri2spec_tf.data.spectrogram import SpecParams


@pytest.fixture(scope="module")
def phantom_wave(phantom_dir):
  return audio.read_audio(f"{phantom_dir}/subjects/S01/audio.wav").waveform


def test_window_starts_are_even_and_cover_the_recording():
  starts = spectrogram.window_starts(23000)
  assert starts.shape == (100,) and starts[0] == 0 and starts[-1] == 2000
  assert np.all(np.abs(np.diff(starts) - 2000 / 99) <= 1)
  with pytest.raises(ValueError):
    spectrogram.window_starts(20999)


def test_targets_match_librosa(phantom_wave):
  """Our targets equal a direct librosa computation with the documented parameters."""
  targets = spectrogram.targets_from_waveform(phantom_wave)
  assert targets.shape == (100, 64, 64) and targets.dtype == np.float32
  starts = np.round(np.linspace(0, phantom_wave.size - 21000, 100)).astype(int)
  for k in (0, 37, 99):
    window = phantom_wave[starts[k]:starts[k] + 21000]
    mel = librosa.feature.melspectrogram(y=window, sr=22050, n_fft=1024, hop_length=330,
                                         n_mels=64, fmin=0.0, fmax=11025.0)
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    expected = np.clip((db + 80.0) / 120.0, 0, 1)
    assert np.max(np.abs(targets[k] - expected)) < 1e-3


def test_low_frequencies_are_row_zero():
  t = np.arange(21000) / 22050
  low = spectrogram.targets_from_waveform(0.3 * np.sin(2 * np.pi * 200 * t) + 0 * t)[0]
  high = spectrogram.targets_from_waveform(0.3 * np.sin(2 * np.pi * 6000 * t))[0]
  assert np.argmax(low.mean(axis=1)) < 5 < 40 < np.argmax(high.mean(axis=1))


def test_normalization_inverts_exactly_inside_its_range():
  rng = np.random.default_rng(0)
  power = 10 ** rng.uniform(-7.9, 3.9, size=(64, 64))  # -79 dB .. +39 dB
  normalized = spectrogram.normalize_power(power)
  np.testing.assert_allclose(spectrogram.normalized_to_power(normalized), power, rtol=1e-4)
  assert spectrogram.normalize_power(np.array([1e-12, 1e6])).tolist() == [0.0, 1.0]


def test_round_trip_mel_waveform_mel(phantom_wave):
  """normalized mel -> Griffin-Lim waveform -> normalized mel stays close."""
  target = spectrogram.targets_from_waveform(phantom_wave)[50]
  waveform = spectrogram.waveform_from_normalized(target, n_iter=64)
  assert waveform.shape == (21000,) and np.all(np.isfinite(waveform))
  again = spectrogram.normalize_power(spectrogram.mel_power(waveform))
  assert np.mean(np.abs(again - target)) < 0.02  # measured 0.010 (~1.2 dB)
  assert np.corrcoef(again.ravel(), target.ravel())[0, 1] > 0.9  # measured 0.945


def test_params_round_trip_and_refuse_wrong_shape():
  params = SpecParams(db_min=-90.0)
  assert SpecParams.from_json(params.to_json()) == params
  with pytest.raises(ValueError, match="64 x 64"):
    SpecParams(hop_length=512)
  with pytest.raises(ValueError):
    SpecParams(db_min=10.0, db_max=0.0)
