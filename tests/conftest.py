"""Shared fixtures: a small phantom dataset made once per test session."""

import os
import subprocess
import sys

from cmri2spec_tf import cli

cli.set_environment_defaults()  # as every command does, before TensorFlow loads

import pytest  # noqa: E402

from cmri2spec_tf.synthetic import phantom  # noqa: E402

PHANTOM_AGEESE, PHANTOM_ASOUK = 3, 2


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
  """5 phantom subjects (3 'ageese', 2 'asouk'), seed 0. Read-only for tests: copy to modify."""
  out = tmp_path_factory.mktemp("phantom")
  phantom.generate(str(out), PHANTOM_AGEESE, PHANTOM_ASOUK, seed=0)
  return str(out)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smoke_command(tmp_path, *extra):
  """The train command on configs/smoke.cfg with everything under tmp_path."""
  return [sys.executable, "-m", "cmri2spec_tf.train", f"--flagfile={REPO}/configs/smoke.cfg",
          f"--data_dir={tmp_path}/data", f"--model_dir={tmp_path}/run",
          f"--cache_dir={tmp_path}/cache", *extra]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
  """(model_dir, CompletedProcess) of one smoke training run, shared by the tests that read it."""
  tmp_path = tmp_path_factory.mktemp("smoke")
  result = subprocess.run(smoke_command(tmp_path), capture_output=True, text=True, timeout=600,
                          cwd=REPO)
  assert result.returncode == 0, result.stderr[-3000:]
  return tmp_path / "run", result


@pytest.fixture(scope="session")
def smoke_vocoder(smoke_run, tmp_path_factory):
  """(vocoder folder, CompletedProcess): configs/vocoder_smoke.cfg on the smoke run's data and
  fold."""
  import json

  run, _ = smoke_run
  config = json.loads((run / "config.json").read_text())
  folder = tmp_path_factory.mktemp("vocoder") / "vocoder"
  result = subprocess.run(
      [sys.executable, "-m", "cmri2spec_tf.vocoder", f"--flagfile={REPO}/configs/vocoder_smoke.cfg",
       f"--data_dir={config['data_dir']}", f"--model_dir={folder}", f"--split={config['split']}",
       f"--fold={config['fold']}"], capture_output=True, text=True, timeout=600, cwd=REPO)
  assert result.returncode == 0, result.stderr[-3000:]
  return folder, result
