"""The errors every layer may raise: a setting that cannot work (commands exit 2), and a write
the disk refused (full, over quota, file too large: commands exit 1)."""

from __future__ import annotations

import errno
import os

# The OS errors that mean "no room for this file": the disk is full, the user's quota is spent,
# the file is over the process's or filesystem's size limit.
DISK_FULL = {errno.ENOSPC: "ENOSPC", errno.EDQUOT: "EDQUOT", errno.EFBIG: "EFBIG"}


class ConfigError(ValueError):
  """A setting that cannot work with this data or machine (a fold the split does not have, a
  batch that does not divide over the replicas, ...). Commands print it as one line and exit 2."""


class WriteFailed(OSError):
  """A file that could not be written for lack of room; the previous file (if any) is kept and
  the temporary one removed. Its text is one line: the path and the OS error."""

  def __init__(self, path: str, code: int):
    super().__init__(code, os.strerror(code), path)
    self.path, self.code = path, code

  def __str__(self):
    return (f"{self.path}: could not write it: {os.strerror(self.code)} "
            f"({DISK_FULL.get(self.code, self.code)}); the previous file, if any, is kept")


def disk_full_code(error: BaseException) -> int | None:
  """The errno of a disk-full error, from an OSError or from a library's message that carries
  the OS's text (h5py, TensorFlow's file ops); None for any other error."""
  if isinstance(error, OSError) and error.errno in DISK_FULL:
    return error.errno
  text = str(error)
  return next((code for code in DISK_FULL if os.strerror(code) in text), None)
