"""Runs `python -m cmri2spec_tf.COMMAND ...` for the tests without paying TensorFlow's import
(~5 s on 2 cores) per command: a launcher process imports TensorFlow, Keras and the package's
libraries once (librosa too, its compiled numba functions loaded from numba's cache: ~4 s less
per command that computes speech), and forks one child per command. The child is a real
process (its own pid, exit status, stdout and stderr files, working folder and environment)
that runs the command module as `__main__`, as `python -m` does.

`run(args, ...)` has subprocess.run's signature for what the tests use. It forks only commands
of this package and the tests' own scripts (tests/scripts/*.py) without an `env=` of their own
(what TensorFlow reads at import time would not reach a child of an already-imported process);
everything else, and every test that needs signals sent to a process it started, uses
subprocess directly.

Fork safety: the launcher never runs a TensorFlow op (no runtime, no thread pools): a child
starts from an interpreter in the state `import` left it in, as a fresh `python -m` would. The
one computation it does is numba_cache's warm-up of librosa's functions on tiny inputs (numpy
and single-threaded numba code, as every speech command does first).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "tests", "scripts")
PACKAGE = "cmri2spec_tf."
# The libraries a command imports; never the command modules (runpy runs those as __main__).
PRELOAD = ("tensorflow", "keras", "numpy", "scipy.signal", "h5py", "PIL.Image", "av", "pydicom",
           "cmri2spec_tf.training.trainer", "cmri2spec_tf.training.runs",
           "cmri2spec_tf.data.dataset", "cmri2spec_tf.data.sources",
           "cmri2spec_tf.evaluation.evaluation", "cmri2spec_tf.evaluation.listening",
           "cmri2spec_tf.speech.speech_metrics", "cmri2spec_tf.speech.vocoders",
           "cmri2spec_tf.serving.inference", "cmri2spec_tf.serving.savedmodel",
           "librosa.feature.inverse", "librosa.filters", "librosa.sequence", "pystoi",
           "soundfile")
OPTIONAL = ("pesq",)  # an extra: its commands run without it

_launcher: subprocess.Popen | None = None


def run(args, *, cwd=REPO, timeout=None, env=None, capture_output=True, text=True,
        file_size_limit: int | None = None, **others) -> subprocess.CompletedProcess:
  """subprocess.run(args, cwd=..., capture_output=True, text=True, timeout=...), forked from the
  launcher where it can be (see the module's docstring). `file_size_limit`: the process's
  RLIMIT_FSIZE in bytes (writes past it fail with EFBIG; Python ignores SIGXFSZ)."""
  target = _target(args)
  others = {k: v for k, v in others.items() if v is not None}
  if target is None or env is not None or others or not capture_output or not text:
    if file_size_limit is not None:
      others["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                        (file_size_limit, file_size_limit))
    return subprocess.run(args, cwd=cwd, timeout=timeout, env=env, capture_output=capture_output,
                          text=text, **others)
  launcher = _started()
  with tempfile.TemporaryDirectory() as folder:
    streams = [_Drain(os.path.join(folder, name)) for name in ("stdout", "stderr")]
    request = {**target, "argv": [str(a) for a in args[target["skip"]:]], "cwd": str(cwd),
               "file_size_limit": file_size_limit, "env": dict(os.environ),
               "stdout": streams[0].path, "stderr": streams[1].path}
    _send(launcher, request)
    pid = json.loads(_line(launcher, None))["pid"]
    try:
      status = json.loads(_line(launcher, timeout))["status"]
    except subprocess.TimeoutExpired:
      os.kill(pid, signal.SIGKILL)
      _line(launcher, None)
      raise subprocess.TimeoutExpired(args, timeout) from None
    finally:
      out, err = (stream.text() for stream in streams)
    return subprocess.CompletedProcess(list(args), status, out, err)


class _Drain:
  """A named pipe the child writes one of its streams into (a pipe, as subprocess gives: no file
  size limit applies to it), read by a thread until the child closes it."""

  def __init__(self, path: str):
    self.path, self.chunks = path, []
    os.mkfifo(path)
    self.thread = threading.Thread(target=self._read, daemon=True)
    self.thread.start()

  def _read(self):
    with open(self.path, "rb") as fifo:  # waits for the child to open it
      for chunk in iter(lambda: fifo.read1(1 << 16), b""):
        self.chunks.append(chunk)

  def text(self) -> str:
    self.thread.join(timeout=5)
    if self.thread.is_alive():  # the child ended before it opened the pipe: end the read
      os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
      self.thread.join()
    return b"".join(self.chunks).decode(errors="replace")


class Started:
  """A command forked from the launcher and left running: the subprocess.Popen calls the tests
  use to stop one at a moment of their choosing (poll, send_signal, wait, communicate). One at
  a time: the launcher takes the next request once this one has ended."""

  def __init__(self, args, cwd=REPO):
    target = _target(args)
    assert target is not None, args
    self.args, self.returncode = list(args), None
    self._launcher = _started()
    self._folder = tempfile.TemporaryDirectory()
    self._streams = [_Drain(os.path.join(self._folder.name, n)) for n in ("stdout", "stderr")]
    _send(self._launcher, {**target, "argv": [str(a) for a in args[target["skip"]:]],
                           "cwd": str(cwd), "file_size_limit": None, "env": dict(os.environ),
                           "stdout": self._streams[0].path, "stderr": self._streams[1].path})
    self.pid = json.loads(_line(self._launcher, None))["pid"]

  def poll(self):
    if self.returncode is None and _has_line(self._launcher):
      self.wait()
    return self.returncode

  def send_signal(self, sig) -> None:
    if self.returncode is None:
      os.kill(self.pid, sig)

  def wait(self, timeout=None):
    if self.returncode is None:
      self.returncode = json.loads(_line(self._launcher, timeout))["status"]
    return self.returncode

  def communicate(self, timeout=None) -> tuple[str, str]:
    """(stdout, stderr) once it has ended; TimeoutExpired (it goes on) after timeout seconds."""
    try:
      self.wait(timeout)
    except subprocess.TimeoutExpired:
      raise subprocess.TimeoutExpired(self.args, timeout) from None
    out, err = (stream.text() for stream in self._streams)
    self._folder.cleanup()
    return out, err


def stop() -> None:
  """Ends the launcher (pytest's session end)."""
  global _launcher
  if _launcher is not None and _launcher.poll() is None:
    _launcher.stdin.close()
    _launcher.wait(timeout=30)
  _launcher = None


def _target(args) -> dict | None:
  """What to run: {"module": NAME} for [python, '-m', 'cmri2spec_tf.NAME', ...], {"script": PATH}
  for [python, 'tests/scripts/NAME.py', ...]; None for anything else."""
  args = [str(a) for a in args]
  if len(args) < 2 or args[0] != sys.executable:
    return None
  if len(args) >= 3 and args[1] == "-m" and args[2].startswith(PACKAGE):
    return {"module": args[2], "skip": 3}
  if os.path.dirname(os.path.abspath(args[1])) == SCRIPTS and args[1].endswith(".py"):
    return {"script": os.path.abspath(args[1]), "skip": 2}
  return None


def _started() -> subprocess.Popen:
  global _launcher, _pending
  if _launcher is None or _launcher.poll() is not None:
    _launcher = subprocess.Popen([sys.executable, os.path.abspath(__file__)], cwd=REPO,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    _pending = b""
    assert json.loads(_line(_launcher, 300)) == {"ready": True}
  return _launcher


_pending = b""  # what was read from the launcher past the last full line


def _send(launcher: subprocess.Popen, request: dict) -> None:
  data = (json.dumps(request) + "\n").encode()
  while data:
    data = data[launcher.stdin.write(data):]


def _line(launcher: subprocess.Popen, timeout) -> str:
  """The launcher's next line, waiting at most timeout seconds (None: no limit). Read without a
  buffer of Python's own, so that select sees every line that has not been taken yet."""
  global _pending
  deadline = None if timeout is None else time.monotonic() + timeout
  while b"\n" not in _pending:
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    ready, _, _ = select.select([launcher.stdout], [], [], left)
    if not ready:
      raise subprocess.TimeoutExpired("launcher", timeout)
    chunk = os.read(launcher.stdout.fileno(), 1 << 16)
    if not chunk:
      raise RuntimeError("the test launcher ended")
    _pending += chunk
  line, _pending = _pending.split(b"\n", 1)
  return line.decode()


def _has_line(launcher: subprocess.Popen) -> bool:
  """Whether the launcher's next line has begun to arrive (its replies are single writes)."""
  return b"\n" in _pending or bool(select.select([launcher.stdout], [], [], 0)[0])


# ------------------------------------------------------------------ the launcher process
def _serve() -> None:
  """Imports once, then per request line: fork, report the pid, wait, report the status."""
  replies = os.fdopen(os.dup(1), "w", buffering=1)
  requests = os.fdopen(os.dup(0), "r")
  devnull = os.open(os.devnull, os.O_RDWR)
  os.dup2(devnull, 0)
  os.dup2(devnull, 1)  # what the imports print goes nowhere, never into the replies
  from cmri2spec_tf import cli

  cli.set_environment_defaults()  # as every command does, before TensorFlow loads
  import importlib

  from cmri2spec_tf.base import numba_cache

  numba_cache.librosa()  # librosa with its compiled functions loaded, as a speech command's
  for name in PRELOAD:
    importlib.import_module(name)
  for name in OPTIONAL:
    with contextlib.suppress(ImportError):
      importlib.import_module(name)
  replies.write(json.dumps({"ready": True}) + "\n")
  for line in requests:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
      replies.close()
      requests.close()
      _child(request)
    replies.write(json.dumps({"pid": pid}) + "\n")
    _, wait_status = os.waitpid(pid, 0)
    replies.write(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}) + "\n")


def _child(request: dict) -> None:
  """Runs one command as `python -m` would, then leaves without returning to the launcher."""
  import runpy
  import traceback

  code = 0
  try:
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
      target = os.open(path, os.O_WRONLY)  # the client's named pipe (_Drain)
      os.dup2(target, fd)
      os.close(target)
    os.chdir(request["cwd"])
    if request.get("file_size_limit") is not None:
      limit = request["file_size_limit"]
      resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    if "script" in request:  # as `python SCRIPT`: its folder first on the path
      sys.argv = [request["script"]] + request["argv"]
      sys.path[0] = os.path.dirname(request["script"])
      runpy.run_path(request["script"], run_name="__main__")
    else:
      sys.argv = [request["module"]] + request["argv"]
      sys.path[0] = request["cwd"]
      runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if e.code is not None and not isinstance(e.code, int):
      print(e.code, file=sys.stderr)
  except BaseException:  # what python prints for an uncaught exception, and its exit status
    traceback.print_exc()
    code = 1
  finally:
    try:  # what the interpreter does at its end: join threads, run atexit, flush
      import atexit
      import threading

      threading._shutdown()
      atexit._run_exitfuncs()
      sys.stdout.flush()
      sys.stderr.flush()
    finally:
      os._exit(code)


if __name__ == "__main__":
  sys.path[0] = REPO
  _serve()
