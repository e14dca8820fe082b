"""librosa's numba functions go into numba's on-disk cache one process at a time
(base/numba_cache.py): two processes filling an empty cache at once left it broken, and every
later process that used pYIN died with SIGSEGV."""

import fcntl
import os
import subprocess
import sys
import time

from cmri2spec_tf.base import numba_cache

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _waiting_for(path: str) -> set[int]:
  """Pids blocked on a lock of `path` (the `->` lines of /proc/locks:
  `N: -> FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE START END`)."""
  inode = str(os.stat(path).st_ino)
  with open("/proc/locks") as table:
    rows = [line.split() for line in table]
  return {int(row[-4]) for row in rows if "->" in row and row[-3].split(":")[-1] == inode}


def test_a_process_imports_librosa_only_once_it_holds_the_cache_lock():
  path = numba_cache.lock_path()
  code = ("import sys; from cmri2spec_tf.base import numba_cache; "
          "numba_cache.librosa(); print(sorted({'librosa', 'numba'} & set(sys.modules)))")
  with open(path, "a") as held:
    fcntl.flock(held, fcntl.LOCK_EX)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
      deadline = time.monotonic() + 120
      while child.pid not in _waiting_for(path):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never waited for the lock"
        time.sleep(0.05)
      waiting_modules = _mapped_numba(child.pid)
    finally:
      fcntl.flock(held, fcntl.LOCK_UN)
  out, err = child.communicate(timeout=300)
  assert child.returncode == 0, err
  assert out.strip() == "['librosa', 'numba']"
  assert not waiting_modules  # while it waited, numba's compiler was not even loaded


def _mapped_numba(pid: int) -> list[str]:
  """The numba / llvmlite shared libraries mapped into a process."""
  with open(f"/proc/{pid}/maps") as maps:
    return sorted({line.split()[-1] for line in maps if "llvmlite" in line or "numba" in line})


def test_the_lock_sits_beside_the_cache_numba_uses(monkeypatch, tmp_path):
  monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
  assert numba_cache.lock_path() == str(tmp_path / numba_cache.LOCK_NAME)
  monkeypatch.delenv("NUMBA_CACHE_DIR")
  import importlib.util

  package = os.path.dirname(importlib.util.find_spec("librosa").origin)
  assert os.access(package, os.W_OK)  # the test venv's own librosa
  assert numba_cache.lock_path() == os.path.join(package, numba_cache.LOCK_NAME)


def test_a_cache_folder_that_cannot_be_made_leaves_the_import_unlocked(monkeypatch, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker / "cache"))
  entered = []
  with numba_cache._cache_lock():
    entered.append(True)
  assert entered == [True] and not (blocker / "cache").exists()
