"""Crash safety: SIGKILL in the middle of each checkpoint write and at a random moment; every
restart resumes (from the last saved epoch's weights exactly, without training that epoch
again), and the last one finishes all epochs with a valid best checkpoint. A corrupt latest
checkpoint falls back to the one before it."""

import json
import os
import random
import signal
import subprocess
import sys
from unittest import mock

import h5py

from cmri2spec_tf.experiments.training_run import weights_fingerprint
from cmri2spec_tf.training import runs
from cmri2spec_tf.training.trainer import build_trainer
from tests.conftest import NO_PICTURES, REPO, smoke_command
from tests import launcher

CRASH_RUN = os.path.join(REPO, "tests", "scripts", "crash_run.py")


def _crash(tmp_path, data, point, epoch):
  """Runs the smoke training until it kills itself at `point` of `epoch`; returns its output."""
  args = smoke_command(tmp_path, *data)[3:]  # the train flags
  result = launcher.run([sys.executable, CRASH_RUN, point, str(epoch), *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600)
  assert result.returncode == -signal.SIGKILL, result.stdout[-2000:] + result.stderr[-2000:]
  assert f"CRASH {point} epoch {epoch}" in result.stdout
  return result.stdout


def _kill_after(tmp_path, data, seconds):
  run = launcher.Started(smoke_command(tmp_path, *data))
  try:
    output, _ = run.communicate(timeout=seconds)  # finished before the kill
  except subprocess.TimeoutExpired:
    run.send_signal(signal.SIGKILL)
    output, _ = run.communicate()
  return output


def _state(run_dir):
  path = run_dir / "checkpoints" / "state.json"
  return json.loads(path.read_text()) if path.exists() else None


def _loadable(path):
  with h5py.File(path, "r") as f:
    return len(f.keys()) > 0


def test_sigkill_at_each_write_and_at_random_then_resume(tmp_path, smoke_data):
  smoke_data = [*smoke_data, NO_PICTURES]
  run_dir = tmp_path / "run"
  # 1. Half of epoch 1's checkpoint written: nothing counts as saved, no state yet.
  _crash(tmp_path, smoke_data, "in_epoch_write", 1)
  assert _state(run_dir) is None
  # 2. Epoch 1's file in place, state.json not updated: the restart starts from scratch again.
  out = _crash(tmp_path, smoke_data, "before_state", 1)
  assert "resumed" not in out and _state(run_dir) is None
  assert (run_dir / "checkpoints" / "epoch-0001.weights.h5").exists()
  # 3. Epoch 1 saved, then killed while writing best.weights.h5: best.json not written yet.
  _crash(tmp_path, smoke_data, "in_best_write", 1)
  assert _state(run_dir)["epoch"] == 1 and not (run_dir / "best.json").exists()
  saved = build_trainer()  # what epoch 1 left, read before any later run can touch it
  saved.load_weights(str(run_dir / "checkpoints" / "epoch-0001.weights.h5"))
  # 4. Killed at a random moment of the resumed run (seeded, so the test is repeatable): it
  # started from epoch 1's weights exactly and did not train epoch 1 again.
  out = _kill_after(tmp_path, smoke_data, random.Random(7).uniform(5, 11))
  assert "resumed after epoch 1" in out and "starting epoch 2" in out, out[-3000:]
  assert "Epoch 1/2" not in out
  printed = float(out.split("weights fingerprint ")[1].split(")")[0])
  assert abs(printed - weights_fingerprint(saved)) <= 1e-6 * abs(printed)
  # 5. The same command finishes the run.
  final = launcher.run(smoke_command(tmp_path, *smoke_data), cwd=REPO, capture_output=True, text=True,
                       timeout=600)
  assert final.returncode == 0, final.stderr[-3000:]
  assert _state(run_dir)["epoch"] == 2
  assert "Epoch 1/2" not in final.stdout and "Epoch 2/2" in out + final.stdout
  best = json.loads((run_dir / "best.json").read_text())
  assert best["epoch"] in (1, 2) and 0 < best["val_l1"] < 1
  assert _loadable(run_dir / "best.weights.h5")
  leftovers = [n for d in (run_dir, run_dir / "checkpoints") for n in os.listdir(d)
               if n.startswith(".")]
  assert leftovers == [], leftovers  # the killed writes' temporaries were cleaned up
  trainer = build_trainer()
  trainer.load_weights(str(run_dir / "best.weights.h5"))

  # A corrupt latest checkpoint: the previous epoch's is restored, with a warning.
  latest = run_dir / "checkpoints" / "epoch-0002.weights.h5"
  os.truncate(latest, os.path.getsize(latest) // 3)
  with mock.patch.object(runs.logging, "warning") as warning:
    assert runs.restore_latest(build_trainer(), str(run_dir)) == 1
  message = warning.call_args_list[0].args
  assert "epoch-0002.weights.h5 unreadable" in message[0] % message[1:]
