"""The index command: manifests of folders laid out like the public speech-MRI datasets."""

import csv
import sys

import numpy as np
import soundfile
from PIL import Image

from cmri2spec_tf.data import dataset
from tests.conftest import REPO
from tests.test_sources import _frames, _write_video, _write_video_with_sound
from tests import launcher


def _index(layout, root, out, *flags):
  return launcher.run([sys.executable, "-m", "cmri2spec_tf.index", f"--layout={layout}",
                       f"--root={root}", f"--out={out}", *flags], cwd=REPO,
                      capture_output=True, text=True, timeout=120)


def _rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def _tone(path, seconds=1.5, rate=16000):
  t = np.arange(int(seconds * rate)) / rate
  soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 180 * t), rate)


def test_usc75_layout_reads_into_check_data(tmp_path):
  """subNNN/2drt/video/<stem>_video.mp4 + subNNN/2drt/audio/<stem>_audio.wav (the denoised
  audio); a video without its wav falls back to its own audio track."""
  root = tmp_path / "usc75"
  sound = 0.3 * np.sin(2 * np.pi * 200 * np.arange(24000) / 16000)
  for sub in ("sub010", "sub011"):
    (root / sub / "2drt" / "video").mkdir(parents=True)
    (root / sub / "2drt" / "audio").mkdir(parents=True)
    (root / sub / "2drt" / "recon").mkdir(parents=True)
    stem = f"{sub}_2drt_01_vcv1_r1"
    _write_video_with_sound(root / sub / "2drt" / "video" / f"{stem}_video.mp4", _frames(t=120),
                            sound, rate=16000)
    if sub == "sub010":
      _tone(root / sub / "2drt" / "audio" / f"{stem}_audio.wav")
    (root / sub / "2drt" / "recon" / f"{stem}_recon.h5").write_bytes(b"")  # not a recording
  result = _index("usc75", root, root / "recordings.csv")
  assert result.returncode == 0, result.stderr[-2000:]
  rows = _rows(root / "recordings.csv")
  assert [(r["subject_id"], r["word"]) for r in rows] == [("sub010", "vcv1"), ("sub011", "vcv1")]
  assert rows[0]["mri"] == "sub010/2drt/video/sub010_2drt_01_vcv1_r1_video.mp4"
  assert rows[0]["audio"] == "sub010/2drt/audio/sub010_2drt_01_vcv1_r1_audio.wav"
  assert rows[1]["audio"] == rows[1]["mri"]  # the audio track inside the video
  assert dataset.report(str(root / "recordings.csv")) == 0


def test_usctimit_frames_wav_and_video_wav_layouts(tmp_path):
  timit = tmp_path / "usctimit"
  (timit / "F1" / "avi_withaudio").mkdir(parents=True)
  (timit / "F1" / "avi_withaudio" / "usctimit_mri_f1_146_150.avi").write_bytes(b"")
  (timit / "F1" / "avi_withaudio" / "notes.txt").write_text("ignored")
  assert _index("usctimit", timit, timit / "m.csv").returncode == 0
  assert [(r["subject_id"], r["word"], r["audio"]) for r in _rows(timit / "m.csv")] == [
      ("F1", "146_150", "F1/avi_withaudio/usctimit_mri_f1_146_150.avi")]

  atr = tmp_path / "atr503"
  (atr / "spk1" / "utt_001").mkdir(parents=True)
  for k, grey in enumerate(_frames(t=40)):
    Image.fromarray(grey.astype(np.uint16) * 257).save(atr / "spk1" / "utt_001" / f"{k}.png")
  _tone(atr / "spk1" / "utt_001.WAV")
  assert _index("frames_wav", atr, atr / "m.csv", "--frame_rate=27.2").returncode == 0
  rows = _rows(atr / "m.csv")
  assert rows == [{"subject_id": "spk1", "word": "utt_001", "mri": "spk1/utt_001",
                   "audio": "spk1/utt_001.WAV", "frame_rate": "27.2"}]
  assert dataset.report(str(atr / "m.csv")) == 0

  plain = tmp_path / "plain"
  (plain / "P1" / "day1").mkdir(parents=True)
  _write_video(plain / "P1" / "day1" / "take1.mov", _frames(), "png", "rgb24")
  _tone(plain / "P1" / "day1" / "take1.wav")
  assert _index("video_wav", plain, tmp_path / "plain.csv").returncode == 0  # a folder above
  assert [(r["subject_id"], r["word"], r["mri"], r["audio"])
          for r in _rows(tmp_path / "plain.csv")] == [
      ("P1", "take1", "plain/P1/day1/take1.mov", "plain/P1/day1/take1.wav")]


def test_index_errors_are_named_and_write_nothing(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  result = _index("usc75", empty, empty / "m.csv")
  assert result.returncode == 1 and "no recording laid out as usc75" in result.stderr
  atr = tmp_path / "atr"
  (atr / "spk1" / "utt_001").mkdir(parents=True)
  Image.fromarray(_frames()[0]).save(atr / "spk1" / "utt_001" / "0.png")
  result = _index("frames_wav", atr, atr / "m.csv")
  assert result.returncode == 1 and "no utt_001.wav beside this frames folder" in result.stderr
  (atr / "spk1" / "utt_001.wav").write_bytes(b"")
  result = _index("frames_wav", atr, atr / "other" / "m.csv")  # its paths would need ../
  assert result.returncode == 1 and "in the dataset folder or a folder above it" in result.stderr
  result = _index("bogus", atr, atr / "m.csv")
  assert result.returncode == 2 and "flag --layout=bogus" in result.stderr
  assert not list(tmp_path.rglob("m.csv"))
