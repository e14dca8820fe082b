"""librosa, imported with its compiled functions put into numba's on-disk cache one process at a
time.

librosa compiles numba functions with `cache=True`: its gufuncs when it is imported, the rest
(pYIN's Viterbi pass, istft's window sum-square, DTW) on their first call. numba's cache is not
safe when two processes fill it at once: they can leave files that belong together written by
different processes, and then this process and *every later one* that loads them dies with
SIGSEGV. A fresh install that runs jobs in parallel (a study's jobs, two test workers) does
exactly that. Measured on 2 cores, three processes starting pYIN on an empty cache at once: the
cache was broken after 5 of 6 rounds; with a lock around the import alone, after 1 of 4 (pYIN's
Viterbi pass compiles on its first call); with this module, after 0 of 5.

`librosa()` imports librosa and calls, once per process, the compiled functions this package uses
with the dtypes it uses them with, holding an exclusive lock on a file beside the cache, so that
processes fill it one after another. Once filled, the lock is held while the cached functions
load (well under a second).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import sys

LOCK_NAME = ".cmri2spec_tf-numba.lock"

_ready = False


def librosa():
  """The librosa module, its compiled functions in numba's cache (see the module docstring)."""
  global _ready
  if not _ready:
    with _cache_lock():
      import librosa as module

      _compile(module)
    _ready = True
  return sys.modules["librosa"]


def lock_path() -> str:
  """The lock file, in the folder numba caches librosa's functions in: NUMBA_CACHE_DIR when set,
  else librosa's own __pycache__ folders (the lock sits in the package folder) when writable,
  else a per-user cache folder."""
  if os.environ.get("NUMBA_CACHE_DIR"):
    return os.path.join(os.environ["NUMBA_CACHE_DIR"], LOCK_NAME)
  package = os.path.dirname(importlib.util.find_spec("librosa").origin)
  if os.access(package, os.W_OK):
    return os.path.join(package, LOCK_NAME)
  user_cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(user_cache, "numba", LOCK_NAME)


@contextlib.contextmanager
def _cache_lock():
  """An exclusive flock on lock_path(); without one (a read-only or lock-less file system) the
  import goes on unlocked, as it would without this module."""
  try:
    path = lock_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle = open(path, "a")
  except OSError:
    yield
    return
  with handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError:
      pass
    try:
      yield
    finally:
      with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)


def _compile(librosa) -> None:
  """Calls each lazily compiled function the package reaches, on tiny inputs of its dtypes:
  pYIN (probes), Griffin-Lim's istft (every synthesis), DTW (MCD-DTW)."""
  import numpy as np

  rate = 22050
  tone = np.sin(2 * np.pi * 140 * np.arange(4096) / rate).astype(np.float32)
  librosa.pyin(tone, fmin=60, fmax=400, sr=rate, frame_length=2048)
  magnitude = np.abs(librosa.stft(tone, n_fft=512, hop_length=128))
  librosa.griffinlim(magnitude, n_iter=1, hop_length=128, n_fft=512, random_state=0)
  cepstra = np.zeros((3, 4), np.float64)
  librosa.sequence.dtw(X=cepstra, Y=cepstra, metric="euclidean")
