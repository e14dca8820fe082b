"""Evaluation metrics, baselines, the Table 2 writer, the Lip2AudSpec baseline, the ablation runner."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from cmri2spec_tf.evaluation import baselines, evaluation
from cmri2spec_tf.training import runs
from cmri2spec_tf.experiments import study
from cmri2spec_tf.training.config import TrainConfig
from cmri2spec_tf.data.dataset import ArrayDataset
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.models.lip2audspec import build_lip2audspec
from cmri2spec_tf.models.translator import build_decoder, build_encoder
from cmri2spec_tf.training.trainer import build_trainer
from tests import launcher
from tests.conftest import _command_into, _completed, shared

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _toy(values_per_window, mri=None):
  """ArrayDataset whose recording r has windows filled with the constants values_per_window[r]."""
  values = np.asarray(values_per_window, np.float32)
  spectrograms = np.broadcast_to(values[:, :, None, None], values.shape + (64, 64)).copy()
  ids = [f"S{r}" for r in range(len(values))]
  mri = np.zeros((len(values), 26, 128, 128), np.float16) if mri is None else mri
  return ArrayDataset(ids, ["ageese"] * len(ids), mri, spectrograms.astype(np.float16), SpecParams())


def test_perfect_prediction_scores_zero():
  rng = np.random.default_rng(0)
  spectrograms = rng.random((2, 4, 64, 64)).astype(np.float16)
  spectrograms[:] = spectrograms[:, :1]  # identical windows: one prediction per recording can match
  data = ArrayDataset(["A", "B"], ["ageese", "asouk"], np.zeros((2, 26, 128, 128), np.float16),
                      spectrograms, SpecParams())
  rows = evaluation.recording_scores(spectrograms[:, 0].astype(np.float32), data)
  assert all(row[m] == 0.0 for row in rows for m in evaluation.METRICS)


def test_mean_baseline_matches_closed_form():
  train = _toy([[0.25, 0.25], [0.5, 0.5]])  # mean training window: 0.375 everywhere
  heldout = _toy([[0.0, 1.0]])               # windows 0.0 and 1.0 (all exact in float16)
  rows = evaluation.recording_scores(baselines.mean_spectrogram(train, heldout), heldout)
  assert rows[0]["l1"] == pytest.approx(0.5 * 0.375 + 0.5 * 0.625, abs=1e-6)
  assert rows[0]["mse"] == pytest.approx(0.5 * 0.375 ** 2 + 0.5 * 0.625 ** 2, abs=1e-6)
  assert rows[0]["l1_db"] == pytest.approx(0.5 * 120, abs=1e-3)  # normalization spans 120 dB
  assert evaluation.overall(rows)["l1"] == pytest.approx(0.5, abs=1e-6)


def test_nearest_neighbour_copies_the_closest_mri():
  mri = np.zeros((3, 26, 128, 128), np.float16)
  mri[1] += 0.5
  mri[2] += 1.0
  train = _toy([[0.1, 0.3], [0.5, 0.5], [0.9, 0.9]], mri)
  query = np.full((1, 26, 128, 128), 0.45, np.float16)
  heldout = _toy([[0.0, 0.0]], query)
  prediction = baselines.nearest_neighbour(train, heldout)
  np.testing.assert_allclose(prediction, 0.5, atol=1e-3)  # recording 1, mean over its windows


def test_per_subject_rows_and_csv():
  rows = [{"subject_id": "A", "word": "ageese", "l1": 0.1, "mse": 0.01, "l1_db": 12.0},
          {"subject_id": "A", "word": "ageese", "l1": 0.3, "mse": 0.03, "l1_db": 36.0},
          {"subject_id": "B", "word": "asouk", "l1": 0.2, "mse": 0.02, "l1_db": 24.0}]
  subjects = evaluation.subject_scores(rows)
  assert [s["subject_id"] for s in subjects] == ["A", "B"]
  assert subjects[0]["l1"] == pytest.approx(0.2)
  table = list(csv.DictReader(io.StringIO(evaluation.to_csv({"m": rows}))))
  assert [r["subject_id"] for r in table] == ["A", "B", "ALL"]
  assert float(table[-1]["l1"]) == pytest.approx(0.2)


def test_rank_marks_best_and_second_as_printed():
  assert study.rank_marks([0.315, 0.273, 0.260, 0.252, 0.246]) == ["", "", "", "second", "best"]
  # ties at the printed precision share the mark; the next distinct value is second
  assert study.rank_marks([0.2501, 0.2502, 0.27, 0.3]) == ["best", "best", "second", ""]


def test_table_marks_paper_rows():
  labels = ["Lip2AudSpec", "w/o both", "w/o PairDisen", "w/o GAN", "Ours"]
  means = [0.315, 0.273, 0.260, 0.252, 0.246]
  rows = [{"label": l, "parameters": 1000, "l1_mean": m, "l1_std": 0.005, "l1_db_mean": m * 120,
           "l1_db_std": 0.6, "mse_mean": 0.1, "mse_std": 0.01} for l, m in zip(labels, means)]
  base = TrainConfig(data_dir="d", model_dir="m", split="loso")
  lines = study.format_table(rows, base, [0, 1, 2], range(63)).splitlines()
  row_of = {l: next(line for line in lines if line.startswith(f"| {l} |")) for l in labels}
  assert "**0.246±0.005**" in row_of["Ours"]
  assert "<u>0.252±0.005</u>" in row_of["w/o GAN"]
  assert "**" not in row_of["Lip2AudSpec"] and "<u>" not in row_of["w/o PairDisen"]
  assert "folds 0-62" in lines[0]


def test_aggregate_mean_and_std_over_seeds_pool_folds():
  def report(l1_by_subject):
    subjects = [{"subject_id": s, "word": "w", "l1": v, "mse": v, "l1_db": 120 * v}
                for s, v in l1_by_subject.items()]
    return {"model": "cmri2spec", "parameters": {"cmri2spec": 7},
            "methods": {"cmri2spec": {"subjects": subjects},
                        "mean": {"subjects": [dict(s, l1=0.5) for s in subjects]}}}
  reports = {study.Job("ours", 0, 0, "a"): report({"A": 0.1}),
             study.Job("ours", 0, 1, "b"): report({"B": 0.3, "C": 0.2}),
             study.Job("ours", 1, 0, "c"): report({"A": 0.3}),
             study.Job("ours", 1, 1, "d"): report({"B": 0.3, "C": 0.3})}
  rows = study.aggregate(reports, ["ours"], ["mean"], [0, 1])
  ours, mean = rows
  assert ours["l1_mean"] == pytest.approx(0.25)  # seed 0: 0.2, seed 1: 0.3
  assert ours["l1_std"] == pytest.approx(np.std([0.2, 0.3], ddof=1))
  assert ours["parameters"] == 7 and mean["parameters"] is None
  assert mean["l1_mean"] == pytest.approx(0.5) and mean["l1_std"] == 0.0


def test_lip2audspec_is_the_paper_baseline_shape_and_size():
  network = build_lip2audspec()
  assert network.output_shape == (None, 64, 64, 1)
  assert network.get_layer("conv3d_2").kernel.shape[:3] == (5, 3, 3)  # temporal window 5
  assert network.get_layer("frame_features").output.shape == (None, 26, 1024)  # time kept
  ours = build_encoder().count_params() + build_decoder().count_params()
  assert 8 <= network.count_params() / ours <= 12  # the paper: ~10x fewer parameters than it


def test_lip2audspec_trains_through_the_same_trainer():
  trainer = build_trainer(model="lip2audspec")
  assert [t.name for t in trainer.train_trackers] == ["loss", "l_mse"]
  rng = np.random.default_rng(0)
  batch = {"mri_a": rng.random((2, 26, 128, 128, 1), np.float32),
           "mri_b": rng.random((2, 26, 128, 128, 1), np.float32),
           "spec_a": rng.random((2, 64, 64, 1), np.float32),
           "spec_b": rng.random((2, 64, 64, 1), np.float32),
           "same_word": np.ones(2, np.float32)}
  before = trainer.network.get_layer("fc_out").kernel.numpy().copy()
  history = trainer.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0,
                        shuffle=False).history
  logs = {name: values[-1] for name, values in history.items()}
  assert np.isfinite(logs["l_mse"]) and logs["loss"] == pytest.approx(logs["l_mse"])
  assert not np.allclose(before, trainer.network.get_layer("fc_out").kernel.numpy())
  assert trainer.inference_model() is trainer.network


def _ablation_command(tmp_path, out="out", *extra):
  """The same small study for every ablation test: 2 trained rows x fold 0 of 2, seed 0,
  deterministic (so any split of its jobs over processes gives the same numbers), without
  TensorBoard pictures (nothing here reads them)."""
  return [sys.executable, "-m", "cmri2spec_tf.ablation", f"--data_dir={tmp_path}/data",
          f"--out_dir={tmp_path}/{out}", f"--cache_dir={tmp_path}/cache", "--phantom",
          "--phantom_ageese=2", "--phantom_asouk=2", "--split=2", "--epochs=1", "--batch_size=2",
          "--pairs_per_epoch=4", "--val_window_stride=20", "--n_images=0", "--seeds=0", "--folds=0",
          "--deterministic", "--audio_windows=1",
          "--methods=lip2audspec,ours_no_pair_no_gan,mean,nearest_neighbour", *extra]


@pytest.fixture(scope="session")
def killed_and_resumed_study(tmp_path_factory):
  """The study, killed after its first job and run again: (its folder, the second run), made
  once per test run whichever xdist worker asks first (conftest.shared). Tests write only
  into folders of their own under it."""
  folder = shared(tmp_path_factory, "study", _kill_and_resume_study)
  return folder, _completed(folder)


def _kill_and_resume_study(tmp_path):
  first = tmp_path / "out" / "lip2audspec" / "seed-0" / "fold-0" / runs.EVALUATION_JSON
  process = subprocess.Popen(_ablation_command(tmp_path), cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not first.exists() and process.poll() is None and time.time() < deadline:
    time.sleep(0.5)
  assert first.exists(), "the first job never finished"
  process.send_signal(signal.SIGKILL)
  process.wait()
  first_written = first.stat().st_mtime_ns
  assert not (tmp_path / "out" / study.TABLE_MD).exists()
  _command_into(tmp_path, _ablation_command(tmp_path))
  assert first.stat().st_mtime_ns == first_written  # the finished job was not redone


def test_ablation_resumes_after_kill_and_writes_table(killed_and_resumed_study):
  tmp_path, result = killed_and_resumed_study
  assert "already done" in result.stdout and "done before" in result.stdout
  epoch_lines = [line for line in result.stdout.splitlines()
                 if line.startswith("ours_no_pair_no_gan seed 0 fold ") and ": epoch 1/1 " in line]
  assert len(epoch_lines) == 1 and all("held-out L1 0." in line for line in epoch_lines)
  table = (tmp_path / "out" / study.TABLE_MD).read_text()
  for label in ("Lip2AudSpec", "Ours w/o PairDisen&GAN", "Mean training", "Nearest neighbour",
                "STOI (griffin_lim)", "L1 vs Ours w/o PairDisen&GAN"):
    assert label in table
  assert table.count("**") == 2  # exactly one best
  rows = list(csv.DictReader(open(tmp_path / "out" / study.TABLE_CSV)))
  assert [r["method"] for r in rows] == ["lip2audspec", "ours_no_pair_no_gan", "mean",
                                         "nearest_neighbour", "word_mean", "recording_mean"]
  assert all(0 < float(r["l1_mean"]) < 0.5 for r in rows)
  methods, levels = rows[:4], {r["method"]: float(r["l1_mean"]) for r in rows[4:]}
  assert all(0 < float(r["griffin_lim_stoi_mean"]) < 1 for r in methods)
  assert levels["recording_mean"] < levels["word_mean"] <= float(rows[2]["l1_mean"]) + 1e-6
  assert all(r["griffin_lim_stoi_mean"] == "" for r in rows[4:])  # lookups: L1 only, not ranked
  assert "Word's mean (reference: told the word)" in table
  tests = list(csv.DictReader(open(tmp_path / "out" / study.SIGNIFICANCE_CSV)))
  assert {t["method"] for t in tests} == {"lip2audspec", "mean", "nearest_neighbour"}
  assert all(t["reference"] == "ours_no_pair_no_gan" and t["n_subjects"] == "2" for t in tests)
  assert "smallest possible p is 0.5000" in (tmp_path / "out" / study.SIGNIFICANCE_MD).read_text()
  png = (tmp_path / "out" / study.FIGURE_PNG).read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n"
  for fold in (0,):
    report = json.loads((tmp_path / "out" / "ours_no_pair_no_gan" / "seed-0" / f"fold-{fold}" /
                         runs.EVALUATION_JSON).read_text())
    assert set(report["methods"]) == {"cmri2spec", "mean", "nearest_neighbour"}


def test_two_shards_in_parallel_give_the_single_run_table(killed_and_resumed_study):
  """A job array's tasks, one picked by SLURM's variables, one by Kubernetes's index, run at
  the same time; --collect then writes the table the single process wrote."""
  tmp_path, _ = killed_and_resumed_study
  listed = launcher.run(_ablation_command(tmp_path, "array", "--list_jobs"), cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert listed.returncode == 0, listed.stderr[-3000:]
  assert listed.stdout.split() == [f"{m}/seed-0/fold-0"
                                   for m in ("lip2audspec", "ours_no_pair_no_gan")]
  environments = [{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"},
                  {"JOB_COMPLETION_INDEX": "1"}]
  extra = [[], ["--num_shards=2"]]
  tasks = [subprocess.Popen(_ablation_command(tmp_path, "array", *flags), cwd=REPO,
                            env=os.environ | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for env, flags in zip(environments, extra)]
  outputs = [task.communicate(timeout=600) for task in tasks]
  assert all(task.returncode == 0 for task in tasks), [o[1][-2000:] for o in outputs]
  assert "this task: 1 of 2 jobs: lip2audspec/seed-0/fold-0" in outputs[0][0]
  assert "this task: 1 of 2 jobs: ours_no_pair_no_gan/seed-0/fold-0" in outputs[1][0]
  assert not (tmp_path / "array" / study.TABLE_MD).exists()  # tasks never write the table
  collected = launcher.run(_ablation_command(tmp_path, "array", "--collect"), cwd=REPO,
                           capture_output=True, text=True, timeout=300)
  assert collected.returncode == 0, collected.stderr[-3000:]
  assert "every job is finished" in collected.stdout
  assert (tmp_path / "array" / study.TABLE_MD).read_text() == \
      (tmp_path / "out" / study.TABLE_MD).read_text()  # as printed: identical
  for name in (study.TABLE_CSV, study.SIGNIFICANCE_CSV):  # full precision: float32 rounding
    single, sharded = (list(csv.DictReader(open(tmp_path / out / name))) for out in ("out", "array"))
    assert len(single) == len(sharded) > 0
    for a, b in zip(single, sharded):
      assert a.keys() == b.keys()
      for key in a:
        try:
          assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4, abs=1e-6), (name, key)
        except ValueError:
          assert a[key] == b[key]
  again = launcher.run(_ablation_command(tmp_path, "array", "--job=ours_no_pair_no_gan/seed-0/fold-0"),
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert again.returncode == 0 and "1 already done" in again.stdout  # a done job is skipped


def test_collect_lists_the_missing_jobs(killed_and_resumed_study, tmp_path):
  import shutil

  done, _ = killed_and_resumed_study
  shutil.copytree(done / "out" / "lip2audspec", tmp_path / "partial" / "lip2audspec")
  command = _ablation_command(done, "out", "--collect")
  command[command.index(f"--out_dir={done}/out")] = f"--out_dir={tmp_path}/partial"
  result = launcher.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "1 job(s) not finished, left out: ours_no_pair_no_gan/seed-0/fold-0" in result.stdout
  rows = list(csv.DictReader(open(tmp_path / "partial" / study.TABLE_CSV)))
  assert [r["method"] for r in rows] == ["lip2audspec", "mean", "nearest_neighbour",
                                         "word_mean", "recording_mean"]
