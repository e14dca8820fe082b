"""Shared fixtures: a small phantom dataset, a smoke run and a vocoder, each made once per test
run (`shared`: built under a file lock in the run's temporary folder, so that also several
pytest-xdist workers, where one runs them so, build each once). Read-only for tests: copy to
modify."""

import fcntl
import json
import os
import shutil
import subprocess
import sys

from cmri2spec_tf import cli

cli.set_environment_defaults()  # as every command does, before TensorFlow loads

import pytest  # noqa: E402

from cmri2spec_tf.synthetic import phantom  # noqa: E402
from tests import launcher  # noqa: E402

PHANTOM_AGEESE, PHANTOM_ASOUK = 3, 2


def shared(tmp_path_factory, name: str, make):
  """A folder `make(folder)` filled once per test run, whichever xdist worker asks first."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # every worker's basetemp lies in the run's one folder
  folder = root / f"shared-{name}"
  with open(root / f"shared-{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (folder / ".done").exists():
      shutil.rmtree(folder, ignore_errors=True)
      folder.mkdir()
      make(folder)
      (folder / ".done").write_text("")
  return folder


@pytest.fixture(scope="session", autouse=True)
def command_launcher():
  """The launcher that forks the tests' commands (tests/launcher.py), ended with the session."""
  yield
  launcher.stop()


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
  """5 phantom subjects (3 'ageese', 2 'asouk'), seed 0. Read-only for tests: copy to modify."""
  return str(shared(tmp_path_factory, "phantom",
                    lambda out: phantom.generate(str(out), PHANTOM_AGEESE, PHANTOM_ASOUK, seed=0)))


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# For the training commands of tests that read no TensorBoard pictures or sound (half of a smoke
# run's time is drawing and voicing them): the scalars are still written.
NO_PICTURES = "--n_images=0"


def smoke_command(tmp_path, *extra):
  """The train command on configs/smoke.cfg with everything under tmp_path."""
  return [sys.executable, "-m", "cmri2spec_tf.train", f"--flagfile={REPO}/configs/smoke.cfg",
          f"--data_dir={tmp_path}/data", f"--model_dir={tmp_path}/run",
          f"--cache_dir={tmp_path}/cache", *extra]


def _command_into(folder, command):
  """Runs a command for a shared fixture; keeps its output beside what it made."""
  result = launcher.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
  assert result.returncode == 0, result.stderr[-3000:]
  (folder / "process.json").write_text(json.dumps({"args": command, "stdout": result.stdout,
                                                    "stderr": result.stderr}))


def _completed(folder) -> subprocess.CompletedProcess:
  kept = json.loads((folder / "process.json").read_text())
  return subprocess.CompletedProcess(kept["args"], 0, kept["stdout"], kept["stderr"])


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
  """(model_dir, CompletedProcess) of one smoke training run, shared by the tests that read it."""
  folder = shared(tmp_path_factory, "smoke",
                  lambda out: _command_into(out, smoke_command(out)))
  return folder / "run", _completed(folder)


@pytest.fixture(scope="session")
def smoke_vocoder(smoke_run, tmp_path_factory):
  """(vocoder folder, CompletedProcess): configs/vocoder_smoke.cfg on the smoke run's data and
  fold."""
  run, _ = smoke_run
  config = json.loads((run / "config.json").read_text())
  command = lambda out: [
      sys.executable, "-m", "cmri2spec_tf.vocoder", f"--flagfile={REPO}/configs/vocoder_smoke.cfg",
      f"--data_dir={config['data_dir']}", f"--model_dir={out}/vocoder", f"--split={config['split']}",
      f"--fold={config['fold']}"]
  folder = shared(tmp_path_factory, "vocoder", lambda out: _command_into(out, command(out)))
  return folder / "vocoder", _completed(folder)


@pytest.fixture(scope="session")
def evaluated_smoke_run(smoke_run, smoke_vocoder, tmp_path_factory):
  """(run folder, stdout): a copy of the smoke run evaluated with the smoke vocoder and one
  audio window per recording. Read-only for tests."""
  run, _ = smoke_run
  vocoder, _ = smoke_vocoder

  def evaluate(out):
    shutil.copytree(run, out / "run")
    _command_into(out, [sys.executable, "-m", "cmri2spec_tf.evaluate", f"--model_dir={out}/run",
                        f"--vocoder={vocoder}", "--audio_windows=1"])

  folder = shared(tmp_path_factory, "evaluated", evaluate)
  return folder / "run", _completed(folder).stdout


@pytest.fixture(scope="session")
def rtmri_phantom(tmp_path_factory):
  """(folder, CompletedProcess): `phantom --rtmri` with 2 + 2 subjects (videos with sound,
  TextGrids, recordings.csv). Read-only for tests: copy to modify."""
  command = lambda out: [sys.executable, "-m", "cmri2spec_tf.phantom", "--rtmri",
                         f"--out_dir={out}/rtmri", "--ageese=2", "--asouk=2", "--workers=1"]
  folder = shared(tmp_path_factory, "rtmri", lambda out: _command_into(out, command(out)))
  return folder / "rtmri", _completed(folder)


@pytest.fixture(scope="session")
def smoke_data(smoke_run):
  """Flags that point a smoke command at the shared smoke run's phantom and its filled cache
  (read-only for tests): training tests need not write and decode the phantom again."""
  run, _ = smoke_run
  return [f"--data_dir={run.parent}/data", f"--cache_dir={run.parent}/cache"]
