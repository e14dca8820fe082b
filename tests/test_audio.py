"""Audio reader: rates, channels, sample formats, and the problems check_data reports."""

import numpy as np
import pytest
import soundfile

from cmri2spec_tf.data import audio
from cmri2spec_tf.data.problems import DataError


def _tone(rate, seconds=1.1, hz=440.0, amplitude=0.5, channels=1):
  t = np.arange(int(rate * seconds)) / rate
  mono = amplitude * np.sin(2 * np.pi * hz * t)
  if channels == 1:
    return mono
  return np.stack([mono * (1 + 0.5 * c) for c in range(channels)], axis=1)  # louder right


def _peak_hz(waveform, rate=audio.SAMPLE_RATE):
  spectrum = np.abs(np.fft.rfft(waveform * np.hanning(waveform.size)))
  return np.fft.rfftfreq(waveform.size, 1 / rate)[np.argmax(spectrum)]


@pytest.mark.parametrize("rate,channels,fmt,subtype", [
    (16000, 1, "WAV", "PCM_16"), (44100, 1, "WAV", "PCM_16"), (22050, 2, "WAV", "PCM_16"),
    (48000, 1, "WAV", "PCM_24"), (44100, 2, "FLAC", "PCM_24"), (22050, 1, "WAV", "FLOAT"),
    (8000, 1, "FLAC", "PCM_16")])
def test_any_rate_channels_width_to_mono_22050(tmp_path, rate, channels, fmt, subtype):
  path = str(tmp_path / f"a.{fmt.lower()}")
  soundfile.write(path, _tone(rate, channels=channels), rate, format=fmt, subtype=subtype)
  sound = audio.read_audio(path)
  assert sound.info == audio.AudioInfo(rate, channels, int(rate * 1.1), subtype)
  assert sound.waveform.dtype == np.float32 and sound.waveform.ndim == 1
  assert abs(sound.waveform.size - round(1.1 * audio.SAMPLE_RATE)) <= 1
  assert abs(_peak_hz(sound.waveform) - 440) < 2
  expected_amplitude = 0.5 * np.mean([1 + 0.5 * c for c in range(channels)])  # channel mean
  middle = sound.waveform[2000:-2000]
  assert abs(np.max(np.abs(middle)) - expected_amplitude) < 0.01


@pytest.mark.parametrize("case,phrase", [
    ("silent", "silent"), ("clipped", "clipped"), ("nan", "NaN"), ("short", "shorter than"),
    ("text", "unreadable audio"), ("missing", "not found"), ("empty", "no samples")])
def test_bad_audio_is_named(tmp_path, case, phrase):
  path = str(tmp_path / "bad.wav")
  rate = audio.SAMPLE_RATE
  if case == "silent":
    soundfile.write(path, np.zeros(25000), rate)
  elif case == "clipped":
    soundfile.write(path, np.clip(_tone(rate, amplitude=3.0), -1, 1), rate)
  elif case == "nan":
    wave = _tone(rate)
    wave[100:200] = np.nan
    soundfile.write(path, wave, rate, subtype="FLOAT")
  elif case == "short":
    soundfile.write(path, _tone(16000, seconds=1.3), 16000)  # 20,800 < 21,000 at 16 kHz...
    soundfile.write(path, _tone(rate, seconds=0.9), rate)  # ...and 19,845 at 22,050 Hz
  elif case == "text":
    with open(path, "w") as f:
      f.write("RIFF but not really a wave file")
  elif case == "empty":
    soundfile.write(path, np.zeros(0), rate)
  with pytest.raises(DataError) as info:
    audio.read_audio(path)
  assert str(info.value).startswith(path + ":") and phrase in str(info.value)


def test_length_is_judged_after_resampling(tmp_path):
  # 16,000 samples at 16 kHz is 1 s = 22,050 samples at 22,050 Hz: long enough.
  path = str(tmp_path / "a.wav")
  soundfile.write(path, _tone(16000, seconds=1.0), 16000)
  assert audio.read_audio(path).waveform.size == 22050
