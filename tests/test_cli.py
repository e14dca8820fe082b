"""The command convention: usage errors as one line with exit 2 and nothing written, the
phantom only when asked for, configs by name, --help, the device report, and the package's
import leaving the process alone."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests import launcher

PYTHON = sys.executable


def _run(*args, cwd=REPO, timeout=300, env=None):
  return launcher.run([PYTHON, *args], cwd=cwd, capture_output=True, text=True,
                      timeout=timeout, env=env)


def _snapshot(folder):
  return sorted(os.path.relpath(os.path.join(d, f), folder)
                for d, dirs, files in os.walk(folder) for f in files + dirs)


def _one_error_line(result, *expected):
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert "Traceback" not in result.stderr + result.stdout
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, result.stderr[-2000:]
  for text in expected:
    assert text in errors[0], errors[0]
  return errors[0]


def test_missing_or_empty_data_dir_is_an_error_and_writes_nothing(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  before = _snapshot(tmp_path)
  for data_dir, state in ((tmp_path / "no" / "such" / "dir", "does not exist"),
                          (empty, "is empty")):
    result = _run("-m", "cmri2spec_tf.train", f"--data_dir={data_dir}",
                  f"--model_dir={tmp_path}/run", f"--cache_dir={tmp_path}/cache")
    _one_error_line(result, f"--data_dir={data_dir} {state}", "--phantom")
  assert _snapshot(tmp_path) == before  # no run folder, no phantom, no cache


@pytest.mark.parametrize("flag, expected", [
    ("--split=bogus", "flag --split=bogus: must be 'loso'"),
    ("--fold=999", "--fold must be below the number of folds"),
    ("--precision=float8", "flag --precision=float8: value should be one of"),
    ("--pairs_per_epoch=1", "--pairs_per_epoch must be at least --batch_size"),
    ("--verbose=7", "flag --verbose=7"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, flag, expected):
  """--flagfile=smoke finds the installed config by name (its --split=2 makes --fold=999 bad)."""
  result = _run("-m", "cmri2spec_tf.train", "--flagfile=smoke", f"--data_dir={tmp_path}/d",
                f"--model_dir={tmp_path}/run", flag, cwd=tmp_path)
  _one_error_line(result, expected)
  assert not os.listdir(tmp_path)


def test_more_folds_than_subjects_is_one_line(tmp_path, phantom_dir):
  result = _run("-m", "cmri2spec_tf.train", f"--data_dir={phantom_dir}",
                f"--model_dir={tmp_path}/run", f"--cache_dir={tmp_path}/cache", "--split=7")
  _one_error_line(result, "--split=7", "between 2 and the number of subjects (5)")
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_batch_not_divisible_by_the_replicas_is_one_line(tmp_path, phantom_dir):
  script = ("import sys, tensorflow as tf\n"
            "cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(cpu, "
            "[tf.config.LogicalDeviceConfiguration()] * 2)\n"
            "from cmri2spec_tf import train\n"
            "train.entry()\n")
  result = _run("-c", script, f"--data_dir={phantom_dir}", f"--model_dir={tmp_path}/run",
                "--batch_size=3", "--strategy=mirrored")
  _one_error_line(result, "--batch_size=3", "not a multiple of the 2 replicas")
  assert not (tmp_path / "run").exists()


def test_train_prints_the_device_report_first(tmp_path):
  """In a fresh interpreter, as a user runs it (the launcher's children find TensorFlow loaded,
  so its loading lines could not show there)."""
  result = subprocess.run([PYTHON, "-m", "cmri2spec_tf.train", f"--data_dir={tmp_path}/none",
                           f"--model_dir={tmp_path}/run", "--precision=mixed_bfloat16"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  first = result.stdout.splitlines()[0]
  assert first.startswith("devices: ") and first.endswith("; precision: mixed_bfloat16"), first
  if not os.path.exists("/proc/driver/nvidia/version"):
    assert "CPU only (no NVIDIA driver on this machine)" in first
    assert "failed call to cuInit" not in result.stderr  # replaced by the report
    tf_log = [line for line in (result.stdout + result.stderr).splitlines()
              if re.match(r"^[IWE]\d{4} ", line) or "absl::InitializeLog" in line]
    assert tf_log == [], tf_log  # TensorFlow's loading lines, before absl's logging starts


def test_ablation_help_lists_the_training_flags_it_passes_on():
  result = _run("-m", "cmri2spec_tf.ablation", "--help", timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  for flag in ("--out_dir", "--methods", "--seeds", "--epochs", "--batch_size", "--precision",
               "--data_dir", "--phantom", "--split", "--beta"):
    assert flag in result.stdout, flag
  for per_job in ("--model_dir", "--pair_disentangle", "--fold="):
    assert per_job not in result.stdout, per_job


def test_ablation_rejects_unknown_methods_and_seeds_in_one_line(tmp_path):
  result = _run("-m", "cmri2spec_tf.ablation", f"--data_dir={tmp_path}/d",
                f"--out_dir={tmp_path}/out", "--methods=ours,bogus")
  _one_error_line(result, "--methods: unknown bogus")
  result = _run("-m", "cmri2spec_tf.ablation", f"--data_dir={tmp_path}/d",
                f"--out_dir={tmp_path}/out", "--seeds=0,x")
  _one_error_line(result, "flag --seeds=", "comma-separated list of non-negative integers")
  assert not os.listdir(tmp_path)


def test_importing_the_package_changes_no_environment_variable_and_loads_no_tensorflow():
  script = ("import os, sys\n"
            "before = dict(os.environ)\n"
            "import cmri2spec_tf\n"
            "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "assert callable(cmri2spec_tf.load) and cmri2spec_tf.__version__\n"
            "print('ok')\n")
  env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
  result = _run("-c", script, env=env, timeout=120)
  assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_commands_define_no_flags_at_import():
  script = ("from absl import app, flags, logging\n"  # absl's own flags
            "before = set(flags.FLAGS)\n"
            "import cmri2spec_tf.train, cmri2spec_tf.evaluate, cmri2spec_tf.ablation\n"
            "import cmri2spec_tf.export, cmri2spec_tf.predict, cmri2spec_tf.bench\n"
            "import cmri2spec_tf.phantom, cmri2spec_tf.check_data\n"
            "print(sorted(set(flags.FLAGS) - before))\n")
  result = _run("-c", script, timeout=120)
  assert result.stdout.strip() == "[]", result.stdout + result.stderr[-2000:]


def test_only_precision_sets_the_dtype_policy():
  package = os.path.join(REPO, "cmri2spec_tf")
  setters = sorted(os.path.relpath(os.path.join(d, f), package)
                   for d, _, files in os.walk(package) for f in files if f.endswith(".py")
                   and "set_dtype_policy(" in open(os.path.join(d, f)).read())
  assert setters == ["models/precision.py"], setters
