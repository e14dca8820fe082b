"""Fuzzing the DICOM and WAV readers (hypothesis, bounded): any corrupted file either reads or
raises DataError naming that file; never another exception, never a hang."""

import os
import tempfile

import numpy as np
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmri2spec_tf.data import audio, dicom
from cmri2spec_tf.data.problems import DataError
from tests.dicom_helpers import moving_square_frames, write_series

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

_seed_files = {}


def _valid_dicom() -> list[bytes]:
  """The two files of a valid 2-frame series (distinct TriggerTime)."""
  if "dicom" not in _seed_files:
    with tempfile.TemporaryDirectory() as tmp:
      folder = write_series(os.path.join(tmp, "s"), moving_square_frames(n=2, rows=32, cols=32))
      _seed_files["dicom"] = []
      for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
          _seed_files["dicom"].append(f.read())
  return _seed_files["dicom"]


def _valid_wav() -> bytes:
  if "wav" not in _seed_files:
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "a.wav")
      t = np.arange(22050) / 22050
      soundfile.write(path, 0.3 * np.sin(2 * np.pi * 200 * t), 22050, subtype="PCM_16")
      with open(path, "rb") as f:
        _seed_files["wav"] = f.read()
  return _seed_files["wav"]


def _mutate(data: bytes, edits, cut) -> bytes:
  buffer = bytearray(data[:max(0, len(data) - cut)])
  for position, value in edits:
    if buffer:
      buffer[position % len(buffer)] = value
  return bytes(buffer)


_edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12)
# header bytes are where parsers break: bias edits to the first 1,500 bytes half of the time
_header_edits = st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 255)), max_size=12)


@FUZZ
@given(edits=st.one_of(_edits, _header_edits), cut=st.integers(0, 4000))
def test_corrupted_dicom_reads_or_raises_data_error(tmp_path_factory, edits, cut):
  folder = tmp_path_factory.mktemp("dcm")
  first, second = _valid_dicom()
  (folder / "frame1").write_bytes(_mutate(first, edits, cut))
  (folder / "frame2").write_bytes(second)
  try:
    cine = dicom.read_cine(str(folder))
  except DataError as e:
    assert str(folder) in str(e)
    return
  assert cine.frames.shape == (26, 128, 128) and np.all(np.isfinite(cine.frames))


@FUZZ
@given(edits=st.one_of(_edits, st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255)),
                                        max_size=8)),
       cut=st.integers(0, 44000))
def test_corrupted_wav_reads_or_raises_data_error(tmp_path_factory, edits, cut):
  path = tmp_path_factory.mktemp("wav") / "a.wav"
  path.write_bytes(_mutate(_valid_wav(), edits, cut))
  try:
    sound = audio.read_audio(str(path))
  except DataError as e:
    assert str(path) in str(e)
    return
  assert sound.waveform.ndim == 1 and np.all(np.isfinite(sound.waveform))


def test_fuzz_seeds_are_readable(tmp_path):
  """The unmutated inputs read: the fuzz tests start from files that work."""
  for i, data in enumerate(_valid_dicom()):
    (tmp_path / f"frame{i}").write_bytes(data)
  assert dicom.read_cine(str(tmp_path)).frames.shape == (26, 128, 128)
  (tmp_path / "a.wav").write_bytes(_valid_wav())
  assert audio.read_audio(str(tmp_path / "a.wav")).waveform.shape == (22050,)
