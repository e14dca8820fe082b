"""Bad-input matrix: each problem gets its message naming the file, exit status 1, and training's
loader refuses the dataset with the same message, leaving no half-written cache entry."""

import os
import shutil
import sys

import numpy as np
import pydicom
import pytest
import soundfile

from cmri2spec_tf.data import dataset
from cmri2spec_tf.data.problems import DatasetProblems
from tests import launcher

HEADER = "subject_id,word,mri,audio\n"


def _row(sid, word="ageese", mri=None, audio=None):
  return f"{sid},{word},{mri or f'subjects/{sid}/mri'},{audio or f'subjects/{sid}/audio.wav'}\n"


@pytest.fixture()
def small(tmp_path, phantom_dir):
  """Two good subjects (S01 ageese, S04 asouk) in a fresh folder."""
  root = tmp_path / "data"
  for sid in ("S01", "S04"):
    shutil.copytree(f"{phantom_dir}/subjects/{sid}", root / "subjects" / sid)
  (root / "manifest.csv").write_text(HEADER + _row("S01") + _row("S04", "asouk"))
  return root


def _write_wave(path, wave):
  soundfile.write(str(path), wave, 22050, subtype="FLOAT")


def _first_dicom(root, sid="S01"):
  folder = root / "subjects" / sid / "mri"
  return folder / sorted(os.listdir(folder))[0]


def _break(root, case):
  """Injects one problem; returns (path the message must name, phrase it must contain)."""
  wav = root / "subjects" / "S01" / "audio.wav"
  mri = root / "subjects" / "S01" / "mri"
  manifest = root / "manifest.csv"
  t = np.arange(23000) / 22050
  if case == "missing_mri":
    shutil.rmtree(mri)
    return mri, "not found"
  if case == "missing_audio":
    wav.unlink()
    return wav, "not found"
  if case == "unreadable_audio":
    wav.write_text("not audio")
    return wav, "unreadable audio"
  if case == "unreadable_dicom":
    victim = _first_dicom(root)
    victim.write_bytes(b"\0" * 10)
    return victim, "DICOM"
  if case == "no_pixel_data":
    victim = _first_dicom(root)
    ds = pydicom.dcmread(victim)
    del ds.PixelData
    ds.save_as(victim)
    return victim, "no pixel data"
  if case == "mixed_series":
    victim = _first_dicom(root)
    ds = pydicom.dcmread(victim)
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(victim)
    return mri, "mixed series"
  if case == "one_frame":
    for name in sorted(os.listdir(mri))[1:]:
      (mri / name).unlink()
    return mri, "at least 2 frames"
  if case == "silent":
    _write_wave(wav, np.zeros(23000))
    return wav, "silent"
  if case == "clipped":
    _write_wave(wav, np.clip(2 * np.sin(2 * np.pi * 200 * t), -1, 1))
    return wav, "clipped"
  if case == "nan":
    wave = 0.3 * np.sin(2 * np.pi * 200 * t)
    wave[5000] = np.nan
    _write_wave(wav, wave)
    return wav, "NaN"
  if case == "short":
    _write_wave(wav, 0.3 * np.sin(2 * np.pi * 200 * t[:20000]))
    return wav, "shorter than"
  if case == "duplicate_row":  # a subject may have many rows, but not the same one twice
    manifest.write_text(HEADER + _row("S01") + _row("S04", "asouk") + _row("S01"))
    return manifest, "duplicate row for subject_id 'S01' on lines 2, 4"
  if case == "missing_column":
    manifest.write_text("subject_id,mri,audio\nS01,subjects/S01/mri,subjects/S01/audio.wav\n")
    return manifest, "missing column(s) word"
  if case == "no_manifest":
    manifest.unlink()
    return manifest, "manifest not found"
  if case == "escaping_path":
    manifest.write_text(HEADER + _row("S01", mri="../../etc") + _row("S04", "asouk"))
    return manifest, "outside the dataset folder"
  if case == "absolute_path":
    manifest.write_text(HEADER + _row("S01", audio="/etc/passwd") + _row("S04", "asouk"))
    return manifest, "is absolute"
  if case == "huge_matrix":  # crafted headers: 65535 x 65535 pixels per frame
    for name in os.listdir(mri):
      ds = pydicom.dcmread(mri / name)
      ds.Rows = ds.Columns = 65535
      ds.save_as(mri / name)
    return mri, "implausible image size"
  if case == "pixel_data_mismatch":  # fewer pixel bytes than Rows x Columns say
    victim = _first_dicom(root)
    ds = pydicom.dcmread(victim)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    ds.save_as(victim)
    return victim, "cannot decode pixel data"
  if case == "truncated_dicom":
    victim = _first_dicom(root)
    os.truncate(victim, os.path.getsize(victim) // 2)
    return victim, "cannot decode pixel data"
  if case == "wav_header_lies":  # the fmt chunk claims a sample rate of 0
    data = bytearray(wav.read_bytes())
    fmt = data.find(b"fmt ")
    data[fmt + 12:fmt + 16] = (0).to_bytes(4, "little")
    wav.write_bytes(bytes(data))
    return wav, "unreadable audio"
  if case == "symlink_loop":
    shutil.rmtree(mri)
    os.symlink(mri.parent / "loop", mri)
    os.symlink(mri, mri.parent / "loop")
    return mri, "symbolic link loop"
  if case == "symlink_escaping":  # a link inside the folder that points outside it
    wav.unlink()
    os.symlink("/etc/hostname", wav)
    return manifest, "outside the dataset folder"
  raise ValueError(case)


CASES = ["missing_mri", "missing_audio", "unreadable_audio", "unreadable_dicom", "no_pixel_data",
         "mixed_series", "one_frame", "silent", "clipped", "nan", "short", "duplicate_row",
         "missing_column", "no_manifest", "escaping_path", "absolute_path",
         "huge_matrix", "pixel_data_mismatch", "truncated_dicom", "wav_header_lies",
         "symlink_loop", "symlink_escaping"]


@pytest.mark.parametrize("case", CASES)
def test_each_problem_is_reported_and_refused(small, tmp_path, case, capsys):
  named, phrase = _break(small, case)
  assert dataset.report(str(small)) == 1
  report = capsys.readouterr().err
  problem_lines = [line for line in report.splitlines() if line.startswith("PROBLEM ")]
  assert any(str(named) in line and phrase in line for line in problem_lines), report
  cache_dir = tmp_path / "cache"
  with pytest.raises(DatasetProblems) as refused:
    dataset.load_dataset(str(small), cache_dir=str(cache_dir), verbose=False)
  assert any(str(named) in str(p) and phrase in str(p) for p in refused.value.problems)
  # Training sees the same messages check_data printed.
  assert {f"PROBLEM {p}" for p in refused.value.problems} <= set(problem_lines)
  leftovers = os.listdir(cache_dir) if cache_dir.exists() else []
  assert not [f for f in leftovers if not f.endswith(".npz")]  # nothing half-written
  assert len(leftovers) <= 1  # at most the good subject's entry


def test_command_line_exit_status(small):
  command = [sys.executable, "-m", "cmri2spec_tf.check_data", f"--data_dir={small}"]
  ok = launcher.run(command, capture_output=True, text=True, timeout=300)
  assert ok.returncode == 0, ok.stderr
  assert "2 usable recording(s)" in ok.stdout and "S04" in ok.stdout
  _break(small, "silent")
  bad = launcher.run(command, capture_output=True, text=True, timeout=300)
  assert bad.returncode == 1
  assert "audio.wav: audio is silent" in bad.stderr


def test_extra_manifest_columns_are_kept_and_ignored(small):
  """Another lab's manifest with its own columns (in any place) is accepted as it is."""
  from cmri2spec_tf.data import manifest as manifest_lib

  (small / "manifest.csv").write_text(
      "notes,subject_id,word,mri,audio,age\n"
      "moved at the end,S01,ageese,subjects/S01/mri,subjects/S01/audio.wav,31\n"
      ",S04,asouk,subjects/S04/mri,subjects/S04/audio.wav,40\n")
  assert dataset.report(str(small)) == 0
  records, problems = manifest_lib.read_manifest(str(small))
  assert problems == [] and [r.subject_id for r in records] == ["S01", "S04"]
  assert dict(records[0].extra) == {"notes": "moved at the end", "age": "31"}


def test_a_manifest_file_of_any_name_is_a_dataset(small):
  """--data_dir may name the manifest itself; its paths are relative to its folder."""
  renamed = small / "session2.csv"
  (small / "manifest.csv").rename(renamed)
  assert dataset.report(str(renamed)) == 0
  assert dataset.report(str(small)) == 1  # the folder alone has no manifest.csv now
