"""Cine MRI from DICOM -> float32 [26, 128, 128] in [0, 1] (docs/method.md "Data", paper Sec. 3.2).

A cine series is either a folder of single-frame files (any names, any order, with or without
an extension or a preamble) or one multi-frame file (Enhanced MR or legacy multi-frame).
Decoding is pydicom's, including compressed transfer syntaxes through the pixel handlers the
project installs (pylibjpeg with its JPEG / JPEG-LS / JPEG 2000 plugins; RLE is built in).

Choices where the paper is silent (also in the README):
- Frame order: TriggerTime, else InstanceNumber, else AcquisitionTime (the first tag present and
  distinct in every frame). Multi-frame files: NominalCardiacTriggerDelayTime, else
  TemporalPositionIndex, else FrameAcquisitionDateTime from the per-frame functional groups,
  else the stored order.
- Intensities: Modality LUT / RescaleSlope+Intercept (per frame for Enhanced MR) applied,
  MONOCHROME1 inverted, colour reduced to luminance.
- Geometry: the physical field of view is kept square-true: the frame is resampled so that one
  pixel has the same size in mm along both axes (from PixelSpacing), centred on a square canvas
  padded with the series' background, and resized (bilinear, anti-aliased) to 128 x 128.
- Time: any frame count is resampled linearly to 26 frames, evenly over the series.
- Normalization per sequence: (x - p0.5) / (p99.5 - p0.5) over the acquired frames, clipped
  to [0, 1], before the time resampling.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from cmri2spec_tf.data.problems import DataError, not_found

N_FRAMES = 26
MATRIX = 128
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5
# Refuse crafted headers before decoding: no cine MRI comes near these.
MAX_PIXELS_PER_FRAME = 4096 * 4096
MAX_TOTAL_PIXELS = 2**31 // 8  # ~2 GiB as float64

_SINGLE_FRAME_ORDER_TAGS = ("TriggerTime", "InstanceNumber", "AcquisitionTime")
_IGNORED_FILE_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini", "Desktop.ini"}
DECODERS = ("pydicom", "tfio")


@dataclasses.dataclass(frozen=True)
class CineInfo:
  """What a series looked like before resampling (check_data prints it)."""

  frames: int
  rows: int
  columns: int
  spacing_mm: tuple[float, float] | None
  ordered_by: str
  files: int
  kind: str = "dicom"  # or another MRI source (sources.py)
  frame_rate: float | None = None  # frames per second, where the source says
  start_s: float | None = None  # the first frame's time on the recording's clock, where known
  duration_s: float | None = None  # the recording's length on that clock, where known
  ignored: tuple[str, ...] = ()  # files of a frames folder that are not frames


@dataclasses.dataclass(frozen=True)
class Cine:
  """A read series: `frames` float32 [26, 128, 128] in [0, 1], and what it was."""

  frames: np.ndarray
  info: CineInfo


def read_cine(path: str | os.PathLike, decoder: str = "pydicom") -> Cine:
  """Reads a cine series (folder or multi-frame file) into the model's input grid.

  `decoder` decodes the pixel data: "pydicom" (with its installed handlers), or "tfio"
  (tensorflow-io's DICOM op; the optional extra, see tfio_decoders.py).
  """
  path = os.fspath(path)
  if decoder not in DECODERS:
    raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
  if os.path.isdir(path):
    raw, spacing, ordered_by, n_files = _read_folder(path, decoder)
  elif os.path.isfile(path):
    raw, spacing, ordered_by = _read_multiframe(path, _read_dataset(path), decoder)
    n_files = 1
  else:
    raise not_found(path, "MRI series")
  if raw.shape[0] < 2:
    raise DataError(path, f"a cine series needs at least 2 frames, found {raw.shape[0]}")
  info = CineInfo(frames=raw.shape[0], rows=raw.shape[1], columns=raw.shape[2],
                  spacing_mm=spacing, ordered_by=ordered_by, files=n_files)
  return Cine(frames=resample_time(normalized_grid(raw, spacing, path), N_FRAMES), info=info)


def normalized_grid(raw: np.ndarray, spacing_mm, path: str) -> np.ndarray:
  """Raw frames [n, r, c] -> the square 128 x 128 grid, intensities normalized to [0, 1] over
  these (acquired) frames, so frames interpolated later do not shift the scale."""
  return normalize_intensity(to_square_grid(raw, spacing_mm), path)


def list_series_files(folder: str) -> list[str]:
  """Regular files of a series folder, hidden files and DICOMDIR left out, sorted by name."""
  names = []
  for entry in os.scandir(folder):
    if entry.name.startswith(".") or entry.name in _IGNORED_FILE_NAMES:
      continue
    try:
      if entry.is_file():
        names.append(entry.path)
    except OSError:  # a symlink loop or a file that vanished
      continue
  return sorted(names)


def _read_dataset(path: str) -> pydicom.Dataset:
  """dcmread, also for files without preamble/meta header, with a clear error otherwise."""
  try:
    return pydicom.dcmread(path)
  except InvalidDicomError:
    pass
  except Exception as e:  # truncated or malformed
    raise DataError(path, f"unreadable DICOM file ({type(e).__name__}: {e})") from e
  try:
    ds = pydicom.dcmread(path, force=True)
    has_image_tags = "Rows" in ds and "Columns" in ds
  except Exception as e:
    raise DataError(path, f"not a DICOM file ({type(e).__name__}: {e})") from e
  if not has_image_tags:
    raise DataError(path, "not a DICOM file (no DICOM header and no image attributes)")
  return ds


def _read_folder(folder: str, decoder: str):
  files = list_series_files(folder)
  if not files:
    raise DataError(folder, "no DICOM files in the series folder")
  datasets = [_read_dataset(f) for f in files]
  if len(datasets) == 1:
    frames, spacing, ordered_by = _read_multiframe(files[0], datasets[0], decoder)
    return frames, spacing, ordered_by, 1
  multi = [f for f, ds in zip(files, datasets) if _number_of_frames(ds) > 1]
  if multi:
    raise DataError(folder, f"folder mixes {len(files)} files with multi-frame file(s) "
                    f"{', '.join(os.path.basename(m) for m in multi[:3])}; give one series")
  _check_one_series(folder, files, datasets)
  ordered_by, keys = _single_frame_order(folder, datasets)
  order = np.argsort(keys, kind="stable")
  frames = np.stack([_frames_of(files[i], datasets[i], decoder)[0] for i in order])
  return frames, _pixel_spacing(datasets[0]), ordered_by, len(files)


def _check_one_series(folder: str, files: list[str], datasets: list[pydicom.Dataset]) -> None:
  uids = {}
  for f, ds in zip(files, datasets):
    uids.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(os.path.basename(f))
  if len(uids) > 1:
    parts = "; ".join(f"{uid or '(none)'}: {len(names)} file(s), e.g. {names[0]}"
                      for uid, names in uids.items())
    raise DataError(folder, f"mixed series in one folder ({len(uids)} SeriesInstanceUIDs: {parts})")
  shapes = {(int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) for ds in datasets}
  if len(shapes) > 1:
    raise DataError(folder, f"frames differ in matrix size: {sorted(shapes)}")


def _single_frame_order(folder: str, datasets: list[pydicom.Dataset]):
  """The first of TriggerTime, InstanceNumber, AcquisitionTime present and distinct in all."""
  for tag in _SINGLE_FRAME_ORDER_TAGS:
    values = [ds.get(tag) for ds in datasets]
    if any(v is None or str(v).strip() == "" for v in values):
      continue
    try:
      keys = [_dicom_time_seconds(v) if tag == "AcquisitionTime" else float(v) for v in values]
    except ValueError:
      continue
    if len(set(keys)) == len(keys):
      return tag, keys
  raise DataError(folder, "cannot order frames: none of " + ", ".join(_SINGLE_FRAME_ORDER_TAGS)
                  + " is present and distinct in every file")


def _dicom_time_seconds(value) -> float:
  """DICOM TM (HHMMSS.FFFFFF, or HH:MM:SS for old files) -> seconds since midnight."""
  text = str(value).strip().replace(":", "")
  hours, minutes = int(text[0:2]), int(text[2:4] or 0)
  seconds = float(text[4:] or 0)
  return hours * 3600 + minutes * 60 + seconds


def _number_of_frames(ds: pydicom.Dataset) -> int:
  try:
    return int(ds.get("NumberOfFrames", 1) or 1)
  except (TypeError, ValueError):
    return 1


def _read_multiframe(path: str, ds: pydicom.Dataset, decoder: str):
  frames = _frames_of(path, ds, decoder)
  ordered_by, keys = _multiframe_order(ds, frames.shape[0])
  if keys is not None:
    frames = frames[np.argsort(keys, kind="stable")]
  return frames, _pixel_spacing(ds), ordered_by


def _multiframe_order(ds: pydicom.Dataset, n_frames: int):
  per_frame = ds.get("PerFrameFunctionalGroupsSequence")
  if not per_frame or len(per_frame) != n_frames:
    return "stored order", None
  getters = {
      "NominalCardiacTriggerDelayTime": lambda g: float(
          g.CardiacSynchronizationSequence[0].NominalCardiacTriggerDelayTime),
      "TemporalPositionIndex": lambda g: float(g.FrameContentSequence[0].TemporalPositionIndex),
      "FrameAcquisitionDateTime": lambda g: _datetime_seconds(
          g.FrameContentSequence[0].FrameAcquisitionDateTime),
  }
  for name, get in getters.items():
    try:
      keys = [get(group) for group in per_frame]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
      continue
    if len(set(keys)) == len(keys):
      return name, keys
  return "stored order", None


def _datetime_seconds(value) -> float:
  text = str(value).strip().split("+")[0].split("-")[0]
  date = datetime.datetime.strptime(text[:8], "%Y%m%d")
  return date.timestamp() + _dicom_time_seconds(text[8:] or "000000")


def _frames_of(path: str, ds: pydicom.Dataset, decoder: str = "pydicom") -> np.ndarray:
  """Decoded, rescaled, MONOCHROME2-oriented grey frames, float64 [n, rows, cols]."""
  if not any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
    raise DataError(path, "DICOM file has no pixel data")
  rows, cols, n = int(ds.get("Rows", 0)), int(ds.get("Columns", 0)), _number_of_frames(ds)
  if rows <= 0 or cols <= 0 or rows * cols > MAX_PIXELS_PER_FRAME or rows * cols * n > MAX_TOTAL_PIXELS:
    raise DataError(path, f"implausible image size {n} x {rows} x {cols} in the header")
  if decoder == "tfio":
    from cmri2spec_tf.data import tfio_decoders

    pixels = tfio_decoders.dicom_pixels(path)
  else:
    pixels = _pydicom_pixels(path, ds)
  samples = int(ds.get("SamplesPerPixel", 1) or 1)
  if samples == 3:  # pydicom returns RGB; reduce to luminance (ITU-R BT.601)
    pixels = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
  # The modality transform maps the stored values: a Modality LUT is indexed by them, so it
  # must see the integers the file stores, not floats.
  frames = np.asarray(pixels).reshape(n, rows, cols)
  frames = _apply_rescale(ds, frames)
  if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
    frames = -frames
  if not np.all(np.isfinite(frames)):
    raise DataError(path, "pixel data holds NaN or infinite values")
  return frames


def _pydicom_pixels(path: str, ds: pydicom.Dataset) -> np.ndarray:
  try:
    return ds.pixel_array
  except Exception as e:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    name = getattr(syntax, "name", "unknown transfer syntax")
    raise DataError(path, f"cannot decode pixel data ({name}): {e}") from e


def _apply_rescale(ds: pydicom.Dataset, frames: np.ndarray) -> np.ndarray:
  """Stored values -> float64 modality values: the Modality LUT Sequence or RescaleSlope and
  Intercept at the top level (pydicom), or the Enhanced MR functional groups' rescale."""
  shared = _functional_group_rescale(ds.get("SharedFunctionalGroupsSequence"), 0)
  per_frame = ds.get("PerFrameFunctionalGroupsSequence")
  if shared is None and not per_frame:
    return np.asarray(apply_modality_lut(frames, ds), dtype=np.float64)
  out = frames.astype(np.float64)
  for i in range(frames.shape[0]):
    slope, intercept = _functional_group_rescale(per_frame, i) or shared or (1.0, 0.0)
    out[i] = frames[i] * slope + intercept
  return out


def _functional_group_rescale(groups, index: int):
  try:
    item = groups[index].PixelValueTransformationSequence[0]
    return float(item.RescaleSlope), float(item.RescaleIntercept)
  except (AttributeError, IndexError, KeyError, TypeError, ValueError):
    return None


def _pixel_spacing(ds: pydicom.Dataset):
  spacing = ds.get("PixelSpacing")
  if spacing is None:
    try:
      spacing = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    except (AttributeError, IndexError, KeyError):
      return None
  try:
    row_mm, col_mm = float(spacing[0]), float(spacing[1])
  except (TypeError, ValueError, IndexError):
    return None
  return (row_mm, col_mm) if row_mm > 0 and col_mm > 0 else None


def to_square_grid(frames: np.ndarray, spacing_mm, size: int = MATRIX) -> np.ndarray:
  """[n, r, c] -> [n, size, size]: isotropic pixels, centred square canvas, anti-aliased resize."""
  import tensorflow as tf  # local: keeps `check_data --help` and the phantom light

  n, rows, cols = frames.shape
  row_mm, col_mm = spacing_mm or (1.0, 1.0)
  side_mm = max(rows * row_mm, cols * col_mm)
  out_rows = max(1, round(size * rows * row_mm / side_mm))
  out_cols = max(1, round(size * cols * col_mm / side_mm))
  resized = tf.image.resize(frames[..., None].astype(np.float32), (out_rows, out_cols),
                            method="bilinear", antialias=True).numpy()[..., 0]
  background = float(np.percentile(frames, LOW_PERCENTILE))
  canvas = np.full((n, size, size), background, dtype=np.float32)
  top, left = (size - out_rows) // 2, (size - out_cols) // 2
  canvas[:, top:top + out_rows, left:left + out_cols] = resized
  return canvas


def resample_time(frames: np.ndarray, n_out: int = N_FRAMES) -> np.ndarray:
  """Linear interpolation of [n, h, w] to [n_out, h, w], evenly over the series."""
  n = frames.shape[0]
  if n == n_out:
    return frames
  positions = np.linspace(0.0, n - 1.0, n_out)
  lower = np.floor(positions).astype(int)
  upper = np.minimum(lower + 1, n - 1)
  weight = (positions - lower)[:, None, None].astype(frames.dtype)
  return frames[lower] * (1 - weight) + frames[upper] * weight


def normalize_intensity(frames: np.ndarray, path: str = "") -> np.ndarray:
  """Robust per-sequence scaling to [0, 1] between the 0.5th and 99.5th percentiles."""
  low, high = np.percentile(frames, [LOW_PERCENTILE, HIGH_PERCENTILE])
  if not high > low:
    raise DataError(path, "MRI series has (nearly) constant intensity: nothing to normalize")
  return np.clip((frames - low) / (high - low), 0.0, 1.0).astype(np.float32)
