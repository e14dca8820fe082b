"""The segment command: TextGrid word tiers -> a manifest of word segments that check_data and
training read."""

import csv
import shutil
import sys

import numpy as np
import soundfile
from praatio import textgrid
from praatio.utilities.constants import Interval

from cmri2spec_tf.data import dataset
from tests.conftest import REPO
from tests import launcher

FPS = 83
WORDS = {  # per subject: (start, end, label) on its recording's clock
    "A": [(0.10, 0.30, "sil"), (0.30, 0.75, "Ageese"), (0.90, 1.30, "asouk"), (1.5, 1.55, "a"),
          (1.80, 2.30, "ageese")],
    "B": [(0.20, 0.70, "ageese"), (1.00, 1.50, "asouk"), (1.70, 2.60, "gorilla")],
    "C": [(0.40, 0.90, "asouk"), (1.10, 1.60, "ageese"), (2.00, 2.40, "tea")],
}


def _dataset(root, with_grid=("A", "B", "C"), unaligned=()):
  """Long recordings (an .npy of frames at 83 fps and a 3 s WAV) per subject, TextGrids."""
  root.mkdir(exist_ok=True)
  (root / "tg").mkdir(exist_ok=True)
  rng = np.random.default_rng(0)
  rows = []
  for k, sid in enumerate(list(WORDS) + list(unaligned)):
    frames = rng.integers(0, 255, (250, 40, 40)).astype(np.uint8)
    np.save(root / f"{sid}_take.npy", frames)
    t = np.arange(3 * 22050) / 22050
    soundfile.write(str(root / f"{sid}_take.wav"), 0.3 * np.sin(2 * np.pi * (150 + 20 * k) * t),
                    22050)
    rows.append(f"{sid},unknown,{sid}_take.npy,{sid}_take.wav,{FPS},site{k}\n")
    if sid in with_grid:
      grid = textgrid.Textgrid()
      grid.addTier(textgrid.IntervalTier("words", [Interval(*w) for w in WORDS[sid]], 0, 3.0))
      extension = ".textgrid" if sid == "B" else ".TextGrid"  # any case
      grid.save(str(root / "tg" / f"{sid}_take{extension}"), format="short_textgrid",
                includeBlankSpaces=True)
  (root / "recordings.csv").write_text("subject_id,word,mri,audio,frame_rate,site\n"
                                       + "".join(rows))
  return root


def _segment(root, *flags):
  return launcher.run([sys.executable, "-m", "cmri2spec_tf.segment",
                       f"--manifest={root}/recordings.csv", f"--alignments={root}/tg",
                       f"--out={root}/words.csv", *flags], cwd=REPO, capture_output=True,
                      text=True, timeout=120)


def _rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def test_top_words_across_subjects_with_padding_and_duration_limits(tmp_path):
  root = _dataset(tmp_path / "data", unaligned=("D",))
  result = _segment(root, "--top_words=2", "--min_duration=0.2", "--max_duration=0.6",
                    "--padding=0.05")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "no alignment for D_take.npy" in result.stderr
  rows = _rows(root / "words.csv")
  # ageese and asouk are said by 3 subjects; 'gorilla' is too long, 'a' too short, 'sil' silence
  assert sorted({r["word"] for r in rows}) == ["ageese", "asouk"]
  assert [(r["subject_id"], r["word"]) for r in rows] == [
      ("A", "ageese"), ("A", "asouk"), ("A", "ageese"), ("B", "ageese"), ("B", "asouk"),
      ("C", "asouk"), ("C", "ageese")]
  first = rows[0]
  assert (float(first["start_s"]), float(first["end_s"])) == (0.25, 0.80)  # padded by 0.05
  assert first["mri"] == "A_take.npy" and first["frame_rate"] == "83" and first["site"] == "site0"
  assert "ageese: 4 segment(s) of 3 subject(s)" in result.stdout
  assert dataset.report(str(root / "words.csv")) == 0  # check_data reads the segments


def test_chosen_words_and_a_manifest_in_another_folder(tmp_path):
  """A manifest written above the dataset folder gets its paths rewritten; one written below
  it is refused (its paths would leave its folder)."""
  root = _dataset(tmp_path / "data")

  def segment_to(out):
    return launcher.run([sys.executable, "-m", "cmri2spec_tf.segment",
                         f"--manifest={root}/recordings.csv", f"--alignments={root}/tg",
                         f"--out={out}", "--words=TEA,gorilla", "--max_duration=1.0"],
                        cwd=REPO, capture_output=True, text=True, timeout=120)

  result = segment_to(tmp_path / "tea.csv")
  assert result.returncode == 0, result.stderr[-2000:]
  rows = _rows(tmp_path / "tea.csv")
  assert [(r["subject_id"], r["word"]) for r in rows] == [("B", "gorilla"), ("C", "tea")]
  assert rows[0]["mri"] == "data/B_take.npy" and rows[0]["audio"] == "data/B_take.wav"
  assert dataset.report(str(tmp_path / "tea.csv")) == 0
  (root / "lists").mkdir()
  result = segment_to(root / "lists" / "tea.csv")
  assert result.returncode == 1 and "would lie outside the folder" in result.stderr
  assert not (root / "lists" / "tea.csv").exists()


def test_bad_alignments_are_named_and_nothing_is_written(tmp_path):
  root = _dataset(tmp_path / "data")
  (root / "tg" / "C_take.TextGrid").write_text("File type = \"ooTextFile\"\nnot a textgrid\n")
  result = _segment(root)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert f"{root}/tg/C_take.TextGrid: unreadable TextGrid" in result.stderr
  assert not (root / "words.csv").exists()
  result = _segment(root, "--tier=phones")
  assert result.returncode == 1 and "no a tier named 'phones'" in result.stderr
  result = _segment(root, "--words=ageese", "--top_words=2")
  assert result.returncode == 2 and "give --words or --top_words, not both" in result.stderr


def test_the_rtmri_phantom_end_to_end(tmp_path, rtmri_phantom):
  """phantom --rtmri -> segment -> check_data -> train -> evaluate, smoke-sized: videos with their
  sound, cut into words by their TextGrids, trained on and scored per segment."""
  import json

  def run(*args):
    result = launcher.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result

  data = tmp_path / "rtmri"
  shutil.copytree(rtmri_phantom[0], data)  # phantom --rtmri, run once for the session
  assert len(list((data / "alignments").glob("*.TextGrid"))) == 4
  from cmri2spec_tf.data import factors
  known = factors.read_factors(str(data))  # the traits every word of a take shares, no timing
  assert sorted(known) == ["S01", "S02", "S03", "S04"]
  assert known["S01"]["word"] == "ageese+asouk+ageese" and 85 <= known["S01"]["f0_hz"] <= 250
  assert known["S01"]["duration_s"] is None and known["S01"]["vocal_tract_cm"] > 0
  run("cmri2spec_tf.segment", f"--manifest={data}/recordings.csv",
      f"--alignments={data}/alignments", f"--out={data}/words.csv")
  assert len(_rows(data / "words.csv")) == 12  # three words each
  run("cmri2spec_tf.check_data", f"--data_dir={data}/words.csv", f"--cache_dir={tmp_path}/cache")
  assert len(list((tmp_path / "cache").rglob("*.npz"))) == 12  # what it read, stored for train
  trained = run("cmri2spec_tf.train", f"--data_dir={data}/words.csv", f"--model_dir={tmp_path}/run",
                f"--cache_dir={tmp_path}/cache", "--split=2", "--epochs=1", "--batch_size=2",
                "--pairs_per_epoch=8", "--val_window_stride=20", "--n_images=1", "--verbose=2")
  assert "data: 12/12 recordings (0 decoded, 12 from cache)" in trained.stderr
  run("cmri2spec_tf.evaluate", f"--model_dir={tmp_path}/run", "--audio_windows=0",
      f"--utterances={data}/recordings.csv")
  report = json.loads((tmp_path / "run" / "evaluation.json").read_text())
  recordings = report["methods"]["cmri2spec"]["recordings"]
  assert len(recordings) == 6 and "@" in recordings[0]["recording_id"]  # 2 subjects x 3 words
  assert all(0 < r["l1"] < 0.5 for r in recordings)
  # the same run scored on the held-out subjects' whole recordings, synthesized continuously
  whole = report["utterances"]["methods"]
  assert [r["subject_id"] for r in whole["cmri2spec"]["recordings"]] == \
      sorted(report["heldout_subjects"])
  assert 0 < whole["cmri2spec"]["overall"]["l1"] < 0.5
  assert whole["truth"]["overall"]["griffin_lim_stoi"] > 0.7
  # a vocoder fine-tuned on this word run voices whole recordings: its segments are refused
  refused = launcher.run([sys.executable, "-m", "cmri2spec_tf.vocoder",
                          f"--finetune_on={tmp_path}/run", f"--model_dir={tmp_path}/voc"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
  assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
  assert f"{data}/words.csv" in refused.stderr and "start_s/end_s" in refused.stderr
  assert "recordings.csv" in refused.stderr and not (tmp_path / "voc").exists()
  # the factors file lies beside recordings.csv, words.csv is in the same folder: probes run
  probed = run("cmri2spec_tf.probe", f"--model_dir={tmp_path}/run")
  assert "probes (held-out" in probed.stdout
