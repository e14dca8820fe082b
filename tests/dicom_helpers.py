"""Writing DICOM series in odd but valid ways for the reader tests."""

import os

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         MRImageStorage, EnhancedMRImageStorage, generate_uid)


def moving_square_frames(n=26, rows=64, cols=64, value=1000, background=100):
  """uint16 [n, rows, cols]: a bright square whose column moves right by one step per frame."""
  frames = np.full((n, rows, cols), background, dtype=np.uint16)
  side = max(4, min(rows, cols) // 8)
  for k in range(n):
    left = int(round(2 + k * (cols - side - 4) / max(n - 1, 1)))
    top = rows // 2 - side // 2
    frames[k, top:top + side, left:left + side] = value
  return frames


def square_column(frames):
  """Centre column of the bright square in each frame (the reader's output)."""
  cols = np.arange(frames.shape[-1])
  weight = (frames > 0.5).sum(axis=-2)
  return (weight * cols).sum(-1) / np.maximum(weight.sum(-1), 1)


def base_dataset(rows, cols, series_uid, sop_class=MRImageStorage):
  ds = Dataset()
  ds.file_meta = FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = sop_class
  ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
  ds.SOPClassUID = sop_class
  ds.StudyInstanceUID = generate_uid()
  ds.SeriesInstanceUID = series_uid
  ds.Modality = "MR"
  ds.PatientID = "TEST"
  ds.Rows, ds.Columns = rows, cols
  ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
  ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
  ds.PixelSpacing = [1.5, 1.5]
  return ds


def write_series(folder, frames, order_tag="TriggerTime", names=None, syntax=ExplicitVRLittleEndian,
                 preamble=True, photometric="MONOCHROME2", rescale=None, spacing=(1.5, 1.5),
                 series_uids=None, shuffle_seed=0, signed=False, bits=16):
  """Writes frames [n, r, c] as single-frame files, in a shuffled write order.

  order_tag: which of TriggerTime / InstanceNumber / AcquisitionTime carries the frame order
  (the others are left out). rescale: per-frame (slope, intercept) list; the stored values are
  (frames - intercept) / slope so the rescaled values equal `frames`.
  """
  os.makedirs(folder, exist_ok=True)
  n, rows, cols = frames.shape
  default_uid = generate_uid()
  order = np.random.default_rng(shuffle_seed).permutation(n)
  for k in order:
    uid = series_uids[k] if series_uids else default_uid
    ds = base_dataset(rows, cols, uid)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PixelSpacing = list(spacing)
    if order_tag == "TriggerTime":
      ds.TriggerTime = 38.46 * k
    elif order_tag == "InstanceNumber":
      ds.InstanceNumber = k + 1
    elif order_tag == "AcquisitionTime":
      ds.AcquisitionTime = "1259%02d.%06d" % (58 + k // 26, (k % 26) * 38461)
    values = frames[k].astype(np.float64)
    if rescale is not None:
      slope, intercept = rescale[k]
      ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
      values = (values - intercept) / slope
    if photometric == "MONOCHROME1":
      ds.PhotometricInterpretation = "MONOCHROME1"
      values = 4000 - values
    dtype = {(16, False): "<u2", (16, True): "<i2", (8, False): "u1"}[(bits, signed)]
    if bits == 8:
      ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = int(signed)
    ds.PixelData = np.round(values).astype(dtype).tobytes()
    name = names[k] if names else f"frame_{k:03d}.dcm"
    path = os.path.join(folder, name)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if not preamble else syntax
    if syntax == ExplicitVRBigEndian:
      ds.PixelData = np.round(values).astype(dtype.replace("<", ">")).tobytes()
    if preamble:
      ds.save_as(path, enforce_file_format=True)
    else:  # a bare dataset: no 128-byte preamble, no 'DICM', no file meta group
      ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
  return folder


def write_enhanced_multiframe(path, frames, trigger_ms, rescale):
  """One Enhanced MR file, frames stored in the given order with per-frame groups."""
  n, rows, cols = frames.shape
  ds = base_dataset(rows, cols, generate_uid(), sop_class=EnhancedMRImageStorage)
  ds.SOPInstanceUID = generate_uid()
  ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
  del ds.PixelSpacing
  ds.NumberOfFrames = n
  shared = Dataset()
  measures = Dataset()
  measures.PixelSpacing = [1.5, 1.5]
  shared.PixelMeasuresSequence = [measures]
  ds.SharedFunctionalGroupsSequence = [shared]
  groups, stored = [], []
  for k in range(n):
    group = Dataset()
    sync = Dataset()
    sync.NominalCardiacTriggerDelayTime = trigger_ms[k]
    group.CardiacSynchronizationSequence = [sync]
    transform = Dataset()
    slope, intercept = rescale[k]
    transform.RescaleSlope, transform.RescaleIntercept = slope, intercept
    transform.RescaleType = "US"
    group.PixelValueTransformationSequence = [transform]
    groups.append(group)
    stored.append(np.round((frames[k] - intercept) / slope).astype("<u2"))
  ds.PerFrameFunctionalGroupsSequence = groups
  ds.PixelData = np.stack(stored).tobytes()
  ds.save_as(path, enforce_file_format=True)
  return path
