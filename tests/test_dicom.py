"""DICOM cine reader: odd but valid files, pydicom's own test files, and clear errors."""

import os
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, RLELossless, generate_uid

from cmri2spec_tf.data import dicom
from cmri2spec_tf.data.problems import DataError
from tests.dicom_helpers import (moving_square_frames, square_column, write_enhanced_multiframe,
                                 write_series)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The plain series every odd variant must read identically to."""
  folder = tmp_path_factory.mktemp("ref") / "series"
  return dicom.read_cine(write_series(str(folder), moving_square_frames())).frames


def _assert_in_time_order(frames):
  cols = square_column(frames)
  assert np.all(np.diff(cols) > 0), cols


@pytest.mark.parametrize("tag", ["TriggerTime", "InstanceNumber", "AcquisitionTime"])
def test_frame_order_from_each_tag(tmp_path, tag, reference):
  cine = dicom.read_cine(write_series(str(tmp_path / "s"), moving_square_frames(), order_tag=tag,
                                      shuffle_seed=3))
  assert cine.info.ordered_by == tag
  assert cine.frames.shape == (26, 128, 128) and cine.frames.dtype == np.float32
  assert cine.frames.min() >= 0 and cine.frames.max() <= 1
  _assert_in_time_order(cine.frames)
  np.testing.assert_allclose(cine.frames, reference, atol=1e-6)


def test_trigger_time_wins_over_instance_number(tmp_path):
  folder = write_series(str(tmp_path / "s"), moving_square_frames(), order_tag="TriggerTime")
  for path in os.listdir(folder):  # InstanceNumber in reverse order must be ignored
    ds = pydicom.dcmread(os.path.join(folder, path))
    ds.InstanceNumber = 1000 - int(round(float(ds.TriggerTime) / 38.46))
    ds.save_as(os.path.join(folder, path))
  cine = dicom.read_cine(folder)
  assert cine.info.ordered_by == "TriggerTime"
  _assert_in_time_order(cine.frames)


@pytest.mark.parametrize("variant", ["implicit_vr", "big_endian", "no_preamble", "odd_names",
                                     "rle", "jpeg2000", "signed", "eight_bit"])
def test_odd_but_valid_encodings(tmp_path, variant, reference):
  frames = moving_square_frames()
  folder = str(tmp_path / "s")
  if variant == "implicit_vr":
    write_series(folder, frames, syntax=ImplicitVRLittleEndian)
  elif variant == "big_endian":
    write_series(folder, frames, syntax=ExplicitVRBigEndian)
  elif variant == "no_preamble":
    write_series(folder, frames, preamble=False)
  elif variant == "odd_names":  # no extension, unicode, names sorting against time order
    write_series(folder, frames, names=[f"ü_{(7919 * k) % 26:02d}" for k in range(26)])
  elif variant == "signed":
    write_series(folder, frames, signed=True)
  elif variant == "eight_bit":
    write_series(folder, (frames // 8).astype(np.uint16), bits=8)
  else:
    write_series(folder, frames)
    syntax = RLELossless if variant == "rle" else pydicom.uid.JPEG2000Lossless
    for name in os.listdir(folder):
      ds = pydicom.dcmread(os.path.join(folder, name))
      ds.compress(syntax)
      ds.save_as(os.path.join(folder, name))
    assert pydicom.dcmread(os.path.join(folder, name)).file_meta.TransferSyntaxUID == syntax
  cine = dicom.read_cine(folder)
  np.testing.assert_allclose(cine.frames, reference, atol=1e-6)


def test_rescale_per_file_and_monochrome1(tmp_path, reference):
  # Each file has its own slope/intercept; only applying them gives back the same series.
  rescale = [((1, 2, 5, 10)[k % 4], -50.0 * k) for k in range(26)]  # stored values stay integers
  plain = dicom.read_cine(write_series(str(tmp_path / "r"), moving_square_frames(), rescale=rescale))
  np.testing.assert_allclose(plain.frames, reference, atol=1e-5)
  inverted = dicom.read_cine(write_series(str(tmp_path / "m"), moving_square_frames(),
                                          photometric="MONOCHROME1"))
  np.testing.assert_allclose(inverted.frames, reference, atol=1e-6)


def test_modality_lut_sequence_maps_the_stored_integers(tmp_path):
  """A series with a Modality LUT Sequence (no RescaleSlope/Intercept) reads exactly as the same
  series written with the LUT already applied. The LUT is nonlinear, so skipping or
  mis-indexing it changes the normalized frames."""
  frames = moving_square_frames()
  frames = frames + np.linspace(0, frames.max(), frames.shape[2])  # many grey levels
  stored = np.round(frames / frames.max() * 999).astype(np.uint16)
  lut = np.round(4000 * (np.arange(1000) / 999.0) ** 2).astype(np.uint16)
  mapped = write_series(str(tmp_path / "mapped"), lut[stored].astype(np.float64))
  with_lut = write_series(str(tmp_path / "lut"), stored.astype(np.float64))
  for name in os.listdir(with_lut):
    ds = pydicom.dcmread(os.path.join(with_lut, name))
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [len(lut), 0, 16])  # LUT Descriptor: entries, first, bits
    item.ModalityLUTType = "US"
    item.add_new(0x00283006, "OW", lut.astype("<u2").tobytes())  # LUT Data
    ds.ModalityLUTSequence = [item]
    for tag in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
      if tag in ds:
        delattr(ds, tag)
    ds.save_as(os.path.join(with_lut, name))
  expected = dicom.read_cine(mapped).frames
  np.testing.assert_allclose(dicom.read_cine(with_lut).frames, expected, atol=1e-6)
  linear = dicom.read_cine(write_series(str(tmp_path / "plain"), stored.astype(np.float64)))
  assert np.abs(linear.frames - expected).max() > 0.05  # the LUT matters


def test_enhanced_multiframe_order_and_per_frame_rescale(tmp_path, reference):
  frames = moving_square_frames().astype(np.float64)
  order = np.random.default_rng(1).permutation(26)
  path = write_enhanced_multiframe(str(tmp_path / "cine"), frames[order],
                                   trigger_ms=[38.46 * k for k in order],
                                   rescale=[((1, 2, 5, 10)[k % 4], -10.0 * k) for k in range(26)])
  cine = dicom.read_cine(path)
  assert cine.info.ordered_by == "NominalCardiacTriggerDelayTime"
  assert cine.info.spacing_mm == (1.5, 1.5)
  np.testing.assert_allclose(cine.frames, reference, atol=1e-5)


def test_non_square_matrix_keeps_physical_aspect(tmp_path):
  # A disc of radius 30 mm on a 96 x 160 matrix with 2 mm x 1 mm pixels (anisotropic).
  rows, cols, row_mm, col_mm = 96, 160, 2.0, 1.0
  yy, xx = np.mgrid[0:rows, 0:cols]
  disc = ((yy - rows / 2) * row_mm) ** 2 + ((xx - cols / 2) * col_mm) ** 2 < 30**2
  frames = np.where(disc, 1000, 100).astype(np.uint16)[None].repeat(4, 0)
  cine = dicom.read_cine(write_series(str(tmp_path / "s"), frames, spacing=(row_mm, col_mm)))
  mask = cine.frames[0] > 0.5
  height, width = np.ptp(np.nonzero(mask)[0]) + 1, np.ptp(np.nonzero(mask)[1]) + 1
  assert cine.frames.shape == (26, 128, 128)
  assert abs(height / width - 1) < 0.05
  # Field of view 192 x 160 mm: 128 px span 192 mm, so the 60 mm disc is ~40 px wide.
  assert abs(width - 60 / (192 / 128)) <= 2


@pytest.mark.parametrize("n_frames", [13, 40])
def test_frame_count_resampled_to_26(tmp_path, n_frames):
  frames = moving_square_frames(n=n_frames)
  cine = dicom.read_cine(write_series(str(tmp_path / "s"), frames, order_tag="InstanceNumber"))
  assert cine.info.frames == n_frames
  assert cine.frames.shape == (26, 128, 128)
  cols = square_column(cine.frames)
  assert np.all(np.diff(cols) >= 0)
  first_last = dicom.read_cine(write_series(str(tmp_path / "t"), frames[[0, -1]],
                                            order_tag="InstanceNumber"))
  np.testing.assert_allclose(cine.frames[[0, -1]], first_last.frames[[0, -1]], atol=0.02)


@pytest.mark.parametrize("name", ["rtdose.dcm", "rtdose_expb.dcm", "rtdose_rle.dcm"])
def test_pydicom_multiframe_files_decode_alike(name):
  """pydicom's own multi-frame test files (15 frames) in three transfer syntaxes."""
  expected = dicom.read_cine(get_testdata_file("rtdose.dcm")).frames
  cine = dicom.read_cine(get_testdata_file(name))
  assert cine.info.frames == 15 and cine.frames.shape == (26, 128, 128)
  np.testing.assert_allclose(cine.frames, expected, atol=1e-6)


def test_pydicom_colour_multiframe_jpeg():
  """A JPEG Baseline multi-frame colour file decodes through the pixel handler plugins."""
  cine = dicom.read_cine(get_testdata_file("examples_ybr_color.dcm"))
  assert cine.info.frames == 30 and cine.frames.shape == (26, 128, 128)
  assert cine.frames.max() == 1.0 and cine.frames.std() > 0.05  # mostly black ultrasound


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_expb.dcm"])
def test_pydicom_mr_files_as_two_frame_series(tmp_path, name):
  """Each of pydicom's MR_small transfer syntaxes, as a 2-frame series, reads like the plain one."""
  def two_frame_series(source, folder):
    os.makedirs(folder)
    for k in range(2):
      ds = pydicom.dcmread(get_testdata_file(source))
      ds.InstanceNumber = k + 1
      ds.SOPInstanceUID = generate_uid()
      ds.save_as(os.path.join(folder, f"f{k}"))
    return folder

  expected = dicom.read_cine(two_frame_series("MR_small.dcm", str(tmp_path / "plain")))
  cine = dicom.read_cine(two_frame_series(name, str(tmp_path / "odd")))
  np.testing.assert_allclose(cine.frames, expected.frames, atol=1e-6)


# ------------------------------------------------------------------- errors
def _error(path):
  with pytest.raises(DataError) as info:
    dicom.read_cine(path)
  return str(info.value)


def test_error_mixed_series(tmp_path):
  uids = [generate_uid() if k % 2 else "1.2.3.4" for k in range(26)]
  folder = write_series(str(tmp_path / "s"), moving_square_frames(), series_uids=uids)
  message = _error(folder)
  assert folder in message and "mixed series" in message


def test_error_no_pixel_data(tmp_path):
  folder = write_series(str(tmp_path / "s"), moving_square_frames())
  victim = os.path.join(folder, sorted(os.listdir(folder))[3])
  ds = pydicom.dcmread(victim)
  del ds.PixelData
  ds.save_as(victim)
  message = _error(folder)
  assert victim in message and "no pixel data" in message


def test_error_single_frame(tmp_path):
  folder = write_series(str(tmp_path / "s"), moving_square_frames(n=1))
  message = _error(folder)
  assert "at least 2 frames" in message and folder in message


def test_error_not_dicom_and_truncated(tmp_path):
  folder = write_series(str(tmp_path / "s"), moving_square_frames())
  text = os.path.join(folder, "notes.txt")
  with open(text, "w") as f:
    f.write("scanner notes: subject moved\n" * 20)
  message = _error(folder)
  assert text in message and "not a DICOM file" in message
  os.remove(text)
  victim = os.path.join(folder, sorted(os.listdir(folder))[0])
  with open(victim, "rb") as f:
    data = f.read()
  with open(victim, "wb") as f:
    f.write(data[: len(data) // 2])
  message = _error(folder)
  assert victim in message


def test_error_cannot_order_and_missing(tmp_path):
  folder = write_series(str(tmp_path / "s"), moving_square_frames(n=4), order_tag=None)
  assert "cannot order frames" in _error(folder)
  assert "not found" in _error(str(tmp_path / "nothing"))
  os.makedirs(tmp_path / "empty")
  assert "no DICOM files" in _error(str(tmp_path / "empty"))


def test_error_crafted_huge_header(tmp_path):
  folder = write_series(str(tmp_path / "s"), moving_square_frames(n=2))
  for name in os.listdir(folder):
    ds = pydicom.dcmread(os.path.join(folder, name))
    ds.Rows = ds.Columns = 65535
    ds.save_as(os.path.join(folder, name))
  message = _error(folder)
  assert "implausible image size" in message and folder in message


def test_phantom_copy_still_reads(tmp_path, phantom_dir):
  """Copying a series elsewhere (new names, shuffled) gives the same array."""
  source = os.path.join(phantom_dir, "subjects", "S01", "mri")
  target = tmp_path / "copy"
  os.makedirs(target)
  for i, name in enumerate(reversed(sorted(os.listdir(source)))):
    shutil.copy(os.path.join(source, name), target / f"x{i}")
  np.testing.assert_array_equal(dicom.read_cine(str(target)).frames, dicom.read_cine(source).frames)
