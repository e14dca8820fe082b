"""Writing files so that a crash never leaves a half-written one: temporary name, then rename."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile

from cmri2spec_tf.base import errors

# ".<final name>.<8 random characters>.tmp<suffix>", as atomic_path names its temporaries
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp")


@contextlib.contextmanager
def atomic_path(final_path: str, suffix: str = ""):
  """Yields a temporary path in the same folder; renames it to final_path if the block succeeds.

  `suffix` lets writers that check extensions (Keras wants `.weights.h5`) accept the name.
  A write the disk refuses (full, quota, size limit) raises errors.WriteFailed naming
  final_path; the temporary file is removed and an existing final_path is left as it was.
  """
  folder = os.path.dirname(os.path.abspath(final_path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(final_path) + ".",
                             suffix=".tmp" + suffix)
  os.close(fd)
  os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would have given
  try:
    yield tmp
    os.replace(tmp, final_path)
  except Exception as e:
    raise_if_disk_full(e, final_path)
    raise
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def raise_if_disk_full(error: BaseException, final_path: str) -> None:
  """errors.WriteFailed for `final_path` when `error` is a disk-full error; else nothing."""
  code = errors.disk_full_code(error)
  if code is not None and not isinstance(error, errors.WriteFailed):
    raise errors.WriteFailed(final_path, code) from error


def write_bytes(path: str, data: bytes) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(folder: str) -> list[str]:
  """Deletes the temporaries a killed writer left in folder; returns their names.

  Call it when a run starts, before anything writes there.
  """
  if not os.path.isdir(folder):
    return []
  stale = [n for n in os.listdir(folder) if _TEMPORARY.match(n)]
  for name in stale:
    os.remove(os.path.join(folder, name))
  return stale


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask
