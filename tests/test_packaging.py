"""The package as users install it: a wheel built from the tracked files (not an editable
install) has every console script, the configs, honest metadata, and works from its install
folder: a console script runs and `cmri2spec_tf.load(run).predict(series)` translates."""

import email
import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

COMMANDS = ("train", "evaluate", "ablation", "export", "predict", "bench", "phantom",
            "check-data", "serve-request", "segment", "index", "vocoder", "probe")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """A wheel built from a copy of the repository's tracked files."""
  tmp = tmp_path_factory.mktemp("wheel")
  tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
  source = tmp / "source"
  for name in filter(None, tracked):
    target = source / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.islink(os.path.join(REPO, name)):
      os.symlink(os.readlink(os.path.join(REPO, name)), target)
    else:
      target.write_bytes(open(os.path.join(REPO, name), "rb").read())
  result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp / "dist"), str(source)],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  (path,) = (tmp / "dist").glob("cmri2spec_tf-*.whl")
  return path


def test_wheel_metadata_scripts_and_configs(wheel):
  with zipfile.ZipFile(wheel) as archive:
    names = archive.namelist()
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = email.message_from_bytes(archive.read(info))
    entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
  for config in ("demo", "smoke", "paper", "ablation_demo", "ablation_paper"):
    assert f"cmri2spec_tf/configs/{config}.cfg" in names
  for command in COMMANDS:
    module = command.replace("-", "_")
    assert f"cmri2spec-{command} = cmri2spec_tf.{module}:entry" in entry_points, command
  assert metadata["Requires-Python"] == ">=3.11"
  assert metadata["License-Expression"] == "Apache-2.0"
  core = [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
  assert any(r.startswith("tensorflow") for r in core)
  assert not [r for r in core if "==" in r], core  # ranges in the metadata, pins in the locks
  gpu = [r for r in metadata.get_all("Requires-Dist") if 'extra == "gpu"' in r]
  assert gpu and "and-cuda" in gpu[0]
  assert any(n.endswith("licenses/LICENSE") for n in names)


def test_installed_wheel_runs_a_console_script_and_the_python_api(wheel, smoke_run, tmp_path):
  target = tmp_path / "site"
  result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--target", str(target), str(wheel)], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  env = dict(os.environ, PYTHONPATH=str(target))
  script = target / "bin" / "cmri2spec-train"
  result = subprocess.run([str(script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "--data_dir" in result.stdout and "--phantom" in result.stdout
  run, _ = smoke_run
  series = os.path.join(open(run / "config.json").read().split('"data_dir": "')[1].split('"')[0],
                        "subjects", "S01", "mri")
  code = ("import sys, cmri2spec_tf\n"
          f"assert cmri2spec_tf.__file__.startswith({str(target)!r}), cmri2spec_tf.__file__\n"
          f"spectrogram = cmri2spec_tf.load({str(run)!r}).predict({series!r})\n"
          "print(spectrogram.shape, float(spectrogram.mean()))\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  shape, mean = result.stdout.strip().rsplit(" ", 1)
  assert shape == "(64, 64)" and 0 < float(mean) < 1
