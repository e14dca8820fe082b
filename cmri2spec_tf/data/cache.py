"""Preprocessing cache: one `.npz` per recording, keyed by its files' bytes and the parameters.

A second run with the same data and parameters loads arrays instead of decoding DICOM and
audio. Arrays are stored as float16 (MRI in [0, 1] and targets in [0, 1]: error <= 2.5e-4) and
expanded to float32 in the input pipeline. Files are written to a temporary name in the cache
folder and renamed, so a killed run never leaves a half-written entry; an unreadable entry is
treated as missing and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
from absl import logging

from cmri2spec_tf.base import atomic
from cmri2spec_tf.data import dicom
from cmri2spec_tf.data.manifest import split_hdf5
from cmri2spec_tf.data.problems import DataError

CACHE_FORMAT = 2  # 2: recordings on one clock (sources.py), their timing stored


def default_cache_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "cmri2spec_tf")


def record_key(mri_path: str, audio_path: str, params_json: str, segment: str = "") -> str:
  """sha256 over the bytes of every source file, the parameters, the reader's settings and
  what of the row picks a part of the files (`segment`: its frame rate, segment, offset)."""
  digest = hashlib.sha256()
  settings = (CACHE_FORMAT, dicom.N_FRAMES, dicom.MATRIX, dicom.LOW_PERCENTILE,
              dicom.HIGH_PERCENTILE)
  digest.update(repr(settings).encode())
  digest.update(params_json.encode())
  if segment:
    digest.update(segment.encode() + b"\0")
  mri_path, inside = split_hdf5(mri_path)
  if inside:
    digest.update(inside.encode() + b"\0")  # which dataset of the HDF5 file
  mri_files = dicom.list_series_files(mri_path) if os.path.isdir(mri_path) else [mri_path]
  for path in mri_files + [audio_path]:
    digest.update(os.path.basename(path).encode() + b"\0")
    _hash_file(digest, path)
  return digest.hexdigest()


def _hash_file(digest, path: str) -> None:
  try:
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
  except OSError as e:
    raise DataError(path, f"cannot read file ({e.strerror or e})") from e


def load(cache_dir: str, key: str):
  """The cached arrays as a dict, or None when absent or unreadable."""
  path = os.path.join(cache_dir, key + ".npz")
  if not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as npz:
      return {name: npz[name] for name in npz.files}
  except Exception as e:  # truncated by a crash of an older version, disk error
    logging.warning("cache entry %s unreadable (%s); rebuilding it", path, e)
    return None


def save(cache_dir: str, key: str, arrays: dict[str, np.ndarray]) -> str:
  """Writes `key.npz` atomically (temporary file in the same folder, then rename)."""
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  final = os.path.join(cache_dir, key + ".npz")
  atomic.write_bytes(final, buffer.getvalue())
  return final
