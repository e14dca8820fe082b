"""A run is never lost or faked: run folders keep their identity, data paths are never invented,
one process writes a run folder, and a full disk leaves the previous files as they were. Every
test asserts what is on disk afterwards (file lists and hashes), not only exit codes."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from cmri2spec_tf.training import runs
from tests.conftest import NO_PICTURES, REPO
from tests import launcher

SMOKE = os.path.join(REPO, "configs", "smoke.cfg")


def _files(folder) -> dict[str, str]:
  """{relative path: sha256} of every file below folder."""
  found = {}
  for root, _, names in os.walk(folder):
    for name in names:
      file = os.path.join(root, name)
      with open(file, "rb") as f:
        found[os.path.relpath(file, folder)] = hashlib.sha256(f.read()).hexdigest()
  return found


def _copy_run(smoke_run, tmp_path):
  """A private copy of the shared smoke run (its data and cache stay shared, read-only)."""
  run, _ = smoke_run
  copy = tmp_path / "run"
  shutil.copytree(run, copy)
  config = json.loads((run / "config.json").read_text())
  return copy, config


def _train(config, model_dir, *extra, limit_bytes=None, timeout=600):
  """The train command on the smoke config with the shared run's data and cache."""
  command = [sys.executable, "-m", "cmri2spec_tf.train", f"--flagfile={SMOKE}",
             f"--data_dir={config['data_dir']}", f"--cache_dir={config['cache_dir']}",
             f"--model_dir={model_dir}", NO_PICTURES, *extra]
  return launcher.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                      file_size_limit=limit_bytes)


def _error_line(result) -> str:
  """The one `error: ...` line a refused or failed command prints."""
  lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(lines) == 1, result.stdout[-2000:] + result.stderr[-3000:]
  return lines[0]


# ------------------------------------------------------------------ identity
def test_another_model_into_a_run_folder_is_refused_and_the_folder_untouched(smoke_run, tmp_path):
  copy, config = _copy_run(smoke_run, tmp_path)
  before = _files(copy)
  result = _train(config, copy, "--model=lip2audspec", "--epochs=3")
  assert result.returncode == 2, result.stderr[-3000:]
  line = _error_line(result)
  assert "model: 'cmri2spec' there, 'lip2audspec' here" in line
  assert "--overwrite" in line and "epochs" not in line  # epochs only continues a run
  assert _files(copy) == before


def test_every_differing_defining_setting_is_named_with_both_values(smoke_run, tmp_path):
  copy, config = _copy_run(smoke_run, tmp_path)
  before = _files(copy)
  result = _train(config, copy, "--precision=mixed_float16", "--beta=0.25", "--seed=3",
                  "--image_every=2", "--verbose=0")
  assert result.returncode == 2, result.stderr[-3000:]
  line = _error_line(result)
  for change in ("precision: 'float32' there, 'mixed_float16' here",
                 "beta: 0.5 there, 0.25 here", "seed: 0 there, 3 here"):
    assert change in line, line
  assert "image_every" not in line and "verbose" not in line
  assert _files(copy) == before


def test_a_folder_of_other_files_is_not_trained_into(tmp_path):
  folder = tmp_path / "mine"
  folder.mkdir()
  (folder / "notes.txt").write_text("my analysis")
  from cmri2spec_tf.training.config import TrainConfig

  with pytest.raises(runs.RunMismatch, match="not a training run's"):
    runs.check_definition(str(folder), TrainConfig(data_dir="d", model_dir=str(folder)))
  assert _files(folder) == {"notes.txt": hashlib.sha256(b"my analysis").hexdigest()}


def test_an_unreadable_config_or_a_file_in_its_place_is_refused(tmp_path):
  from cmri2spec_tf.training.config import TrainConfig

  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text('{"model": "cmri2sp')  # cut short
  with pytest.raises(runs.RunMismatch, match="config.json is unreadable"):
    runs.check_definition(str(run), TrainConfig(data_dir="d", model_dir=str(run)))
  (tmp_path / "file").write_text("x")
  with pytest.raises(runs.RunMismatch, match="is a file, not a folder"):
    runs.check_definition(str(tmp_path / "file"), TrainConfig(data_dir="d", model_dir="x"))


def test_overwrite_moves_the_old_run_aside_whole(smoke_run, tmp_path):
  copy, _ = _copy_run(smoke_run, tmp_path)
  before = _files(copy)
  with runs.claim(str(copy), overwrite=True):
    assert os.listdir(copy) == [runs.LOCK]
  (old,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
  moved = _files(old)
  assert {k: v for k, v in moved.items() if k != runs.LOCK} == {
      k: v for k, v in before.items() if k != runs.LOCK}


# ------------------------------------------------------------------ weights that do not fit
def test_a_checkpoint_of_another_model_stops_the_resume_naming_the_file(smoke_run, tmp_path):
  from cmri2spec_tf.training.trainer import build_trainer

  copy, config = _copy_run(smoke_run, tmp_path)
  latest = copy / "checkpoints" / "epoch-0002.weights.h5"
  build_trainer(model="lip2audspec").save_weights(str(latest))
  before = _files(copy)
  del before[runs.LOCK]  # this process held the folder: the lock names it
  result = _train(config, copy, "--epochs=3")
  assert result.returncode == 1, result.stderr[-3000:]
  line = _error_line(result)
  assert str(latest) in line and "weights of another model" in line
  assert "first difference" in line
  assert "starting from scratch" not in result.stderr
  after = _files(copy)
  del after[runs.LOCK]
  assert after == before  # nothing trained, nothing deleted, nothing rewritten


def test_weights_that_do_not_fit_are_an_error_everywhere_never_a_partial_model(smoke_run,
                                                                               tmp_path):
  import cmri2spec_tf
  from cmri2spec_tf.training.trainer import build_trainer

  copy, _ = _copy_run(smoke_run, tmp_path)
  build_trainer(model="lip2audspec").save_weights(str(copy / "best.weights.h5"))
  with pytest.raises(runs.WeightsMismatch, match="best.weights.h5: weights of another model"):
    cmri2spec_tf.load(str(copy))
  for command in (["evaluate", f"--model_dir={copy}", "--weights=best"],
                  ["export", f"--model_dir={copy}", f"--export_dir={tmp_path}/export/1"]):
    result = launcher.run([sys.executable, "-m", f"cmri2spec_tf.{command[0]}", *command[1:]],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, (command, result.stderr[-2000:])
    assert "weights of another model" in result.stderr, command
  assert not (tmp_path / "export" / "1").exists()
  # a truncated file is unreadable, not mismatched: resume falls back past it
  latest = copy / "checkpoints" / "epoch-0002.weights.h5"
  os.truncate(latest, os.path.getsize(latest) // 2)
  assert runs.restore_latest(build_trainer(), str(copy)) == 1


# ------------------------------------------------------------------ no invented data
@pytest.mark.parametrize("command,config", [("train", "paper"), ("ablation", "ablation_demo"),
                                            ("ablation", "ablation_paper")])
def test_a_missing_data_dir_is_refused_and_nothing_is_created(tmp_path, command, config):
  missing = tmp_path / "mri_typo"
  out = ([f"--model_dir={tmp_path}/run"] if command == "train"
         else [f"--out_dir={tmp_path}/study"])
  result = launcher.run([sys.executable, "-m", f"cmri2spec_tf.{command}",
                         f"--flagfile={config}", f"--data_dir={missing}", *out], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
  line = _error_line(result)
  assert str(missing) in line and "does not exist" in line
  assert "writing the phantom" not in result.stdout
  assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ one writer
def _wait_for_holder(lock_file, pid, seconds=120):
  deadline = time.time() + seconds
  while time.time() < deadline:
    if lock_file.exists() and f'"pid": {pid}' in lock_file.read_text():
      return
    time.sleep(0.2)
  raise AssertionError(f"{lock_file} never named pid {pid}")


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_stale_lock(smoke_run, tmp_path):
  copy, config = _copy_run(smoke_run, tmp_path)
  command = [sys.executable, "-m", "cmri2spec_tf.train", f"--flagfile={SMOKE}",
             f"--data_dir={config['data_dir']}", f"--cache_dir={config['cache_dir']}",
             f"--model_dir={copy}", "--epochs=6", NO_PICTURES]
  first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
  try:
    _wait_for_holder(copy / runs.LOCK, first.pid)
    second = _train(config, copy, "--epochs=6")
    assert second.returncode == 2, second.stderr[-2000:]
    line = _error_line(second)
    assert f"pid {first.pid}" in line and "being written by another process" in line
    assert os.uname().nodename in line
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  third = _train(config, copy, "--epochs=2")  # no stale lock: it resumes at once
  assert third.returncode == 0, third.stderr[-2000:]
  assert "resumed after epoch" in third.stdout


def test_the_lock_is_exclusive_between_processes_and_released_with_the_holder(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time\nfrom cmri2spec_tf.training import runs\n"
       f"runs.WriterLock({str(tmp_path)!r}).acquire()\nprint('held', flush=True)\n"
       "time.sleep(60)\n"], cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(runs.RunFolderBusy, match=f"pid {holder.pid}, since "):
      runs.WriterLock(str(tmp_path)).acquire()
  finally:
    holder.kill()
    holder.wait()
  runs.WriterLock(str(tmp_path)).acquire().release()  # the kernel dropped the dead holder's lock


# ------------------------------------------------------------------ full disks
def _no_temporaries(folder):
  return [n for _, _, names in os.walk(folder) for n in names if ".tmp" in n] == []


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(smoke_run, tmp_path):
  copy, config = _copy_run(smoke_run, tmp_path)
  checkpoints = copy / "checkpoints"
  size = os.path.getsize(checkpoints / "epoch-0002.weights.h5")
  before = _files(checkpoints)
  result = _train(config, copy, "--epochs=3", limit_bytes=size // 2)
  assert result.returncode == 1, result.stderr[-3000:]
  line = _error_line(result)
  assert str(checkpoints / "epoch-0003.weights.h5") in line
  assert "File too large (EFBIG)" in line
  assert _files(checkpoints) == before and _no_temporaries(copy)


def test_a_full_disk_during_a_cache_entry_export_or_evaluation(smoke_run, tmp_path):
  copy, config = _copy_run(smoke_run, tmp_path)
  # a cache entry: a new cache folder under a 64 kB limit
  result = _train(config, tmp_path / "other", "--epochs=1", f"--cache_dir={tmp_path}/cache",
                  limit_bytes=64_000)
  assert result.returncode == 1, result.stderr[-3000:]
  line = _error_line(result)
  assert f"{tmp_path}/cache/" in line and ".npz: could not write it" in line
  assert os.listdir(tmp_path / "cache") == []
  # an export: nothing of the version folder is left
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.export", f"--model_dir={copy}",
                         f"--export_dir={tmp_path}/serving/1"], cwd=REPO, capture_output=True,
                        text=True, timeout=300, file_size_limit=1_000_000)
  assert result.returncode == 1, result.stderr[-3000:]
  line = _error_line(result)
  assert f"{tmp_path}/serving/1: could not write it" in line and "EFBIG" in line
  assert os.listdir(tmp_path / "serving") == []
  # an evaluation: the run's files as they were
  before = _files(copy)
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.evaluate", f"--model_dir={copy}",
                         "--audio_windows=0"], cwd=REPO, capture_output=True, text=True,
                        timeout=300, file_size_limit=2_000)
  assert result.returncode == 1, result.stderr[-3000:]
  assert "could not write it" in result.stderr and "EFBIG" in result.stderr
  assert _files(copy) == before
