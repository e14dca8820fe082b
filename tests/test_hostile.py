"""Hostile inputs end to end: train, evaluate, predict and export refuse them with a clear error
naming the file, exit 1, and write nothing outside their own model_dir / output paths."""

import os
import shutil
import sys

import pydicom
import pytest

from tests.conftest import REPO
from tests import launcher

HEADER = "subject_id,word,mri,audio\n"


def _files(root):
  """Every file under root (links not followed) with its size and mtime: a write shows."""
  found = {}
  for folder, dirs, names in os.walk(root):
    for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
      path = os.path.join(folder, name)
      info = os.lstat(path)
      found[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns)
  return found


def _outside(tmp_path, *own):
  """Snapshot of tmp_path without the folders a command may write into."""
  return {k: v for k, v in _files(tmp_path).items()
          if not any(k == o or k.startswith(o + os.sep) for o in own)}


def _run(module, *flags):
  return launcher.run([sys.executable, "-m", f"cmri2spec_tf.{module}", *flags], cwd=REPO,
                      capture_output=True, text=True, timeout=600)


def _huge_matrix(series):
  for name in os.listdir(series):
    ds = pydicom.dcmread(series / name)
    ds.Rows = ds.Columns = 65535
    ds.save_as(series / name)


def _truncate_first(series):
  first = series / sorted(os.listdir(series))[0]
  os.truncate(first, os.path.getsize(first) // 2)


def _lying_wav(path):
  data = bytearray(path.read_bytes())
  fmt = data.find(b"fmt ")
  data[fmt + 12:fmt + 16] = (0).to_bytes(4, "little")  # sample rate 0
  path.write_bytes(bytes(data))


@pytest.fixture()
def hostile(tmp_path, phantom_dir):
  """A dataset where every recording is hostile; returns (folder, {problem phrase: path})."""
  root = tmp_path / "hostile"
  shutil.copytree(f"{phantom_dir}/subjects", root / "subjects")
  subjects = root / "subjects"
  _huge_matrix(subjects / "S01" / "mri")
  _truncate_first(subjects / "S02" / "mri")
  shutil.rmtree(subjects / "S03" / "mri")
  os.symlink(subjects / "S03" / "loop", subjects / "S03" / "mri")
  os.symlink(subjects / "S03" / "mri", subjects / "S03" / "loop")
  _lying_wav(subjects / "S04" / "audio.wav")
  rows = ["S01,ageese,subjects/S01/mri,subjects/S01/audio.wav",
          "S02,ageese,subjects/S02/mri,subjects/S02/audio.wav",
          "S03,ageese,subjects/S03/mri,subjects/S03/audio.wav",
          "S04,asouk,subjects/S04/mri,subjects/S04/audio.wav"]
  (root / "manifest.csv").write_text(HEADER + "\n".join(rows) + "\n")
  expected = {"implausible image size": "S01", "cannot decode pixel data": "S02",
              "symbolic link loop": "S03", "unreadable audio": "S04"}
  return root, expected


def _paths_escaping(data, tmp_path):
  """A manifest whose paths leave the dataset folder (checked before any file is read)."""
  (tmp_path / "secret.wav").write_bytes((data / "subjects" / "S05" / "audio.wav").read_bytes())
  (data / "manifest.csv").write_text(HEADER + "S05,asouk,subjects/S05/mri,../secret.wav\n"
                                     f"S06,asouk,subjects/S05/mri,{tmp_path}/secret.wav\n")
  return {"points outside the dataset folder": "line 2", "is absolute": "line 3"}


def test_train_refuses_and_writes_only_model_dir(tmp_path, hostile):
  data, files_expected = hostile
  for step in ("files", "paths"):
    expected = files_expected if step == "files" else _paths_escaping(data, tmp_path)
    before = _outside(tmp_path, "run")
    result = _run("train", f"--flagfile={REPO}/configs/smoke.cfg", f"--data_dir={data}",
                  f"--model_dir={tmp_path}/run", f"--cache_dir={tmp_path}/run/cache")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "refusing to train" in result.stderr and "Traceback" not in result.stderr
    for phrase, where in expected.items():
      assert any(phrase in line and where in line for line in result.stderr.splitlines()), \
          (phrase, result.stderr[-3000:])
    assert _outside(tmp_path, "run") == before
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


@pytest.fixture()
def run_copy(smoke_run, tmp_path):
  """A private copy of the finished smoke run (tests here break it)."""
  shutil.copytree(smoke_run[0], tmp_path / "run", symlinks=True)
  return tmp_path / "run"


def test_evaluate_refuses_a_hostile_dataset(tmp_path, hostile, run_copy):
  data, expected = hostile
  before = _outside(tmp_path, "cache")
  result = _run("evaluate", f"--model_dir={run_copy}", f"--data_dir={data}",
                f"--cache_dir={tmp_path}/cache")
  assert result.returncode == 1 and "cannot evaluate" in result.stderr, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert all(phrase in result.stderr for phrase in expected)
  assert _outside(tmp_path, "cache") == before  # no evaluation.json, nothing else


def test_predict_refuses_hostile_series(tmp_path, hostile, run_copy):
  data, _ = hostile
  series = tmp_path / "series"
  series.mkdir()
  for sid in ("S01", "S02"):  # a huge crafted matrix, a truncated file
    shutil.copytree(data / "subjects" / sid / "mri", series / sid)
  os.symlink(series / "S03", series / "S03")  # a link to itself
  before = _outside(tmp_path, "out")
  result = _run("predict", f"--model={run_copy}", f"--mri={series}", f"--out={tmp_path}/out",
                "--batch")
  assert result.returncode == 1, result.stderr[-3000:]
  assert "nothing written" in result.stderr and "Traceback" not in result.stderr
  for phrase, sid in (("implausible image size", "S01"), ("cannot decode pixel data", "S02"),
                      ("symbolic link loop", "S03")):
    assert any(phrase in line and sid in line for line in result.stderr.splitlines()), phrase
  assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")
  assert _outside(tmp_path, "out") == before


def test_export_refuses_corrupt_weights_and_config(tmp_path, run_copy):
  best = run_copy / "best.weights.h5"
  os.truncate(best, os.path.getsize(best) // 2)
  before = _files(tmp_path)
  result = _run("export", f"--model_dir={run_copy}", f"--export_dir={tmp_path}/serving/1")
  assert result.returncode == 1, result.stderr[-3000:]
  assert f"{best}: unreadable weights file" in result.stderr and "Traceback" not in result.stderr
  assert _files(tmp_path) == before  # no export folder, no temporary left behind
  (run_copy / "config.json").write_text("{not json")
  result = _run("export", f"--model_dir={run_copy}", f"--export_dir={tmp_path}/serving/1",
                "--weights=last")
  assert result.returncode == 1 and "config.json: missing or unreadable" in result.stderr
  assert not os.path.exists(tmp_path / "serving")
