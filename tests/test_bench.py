"""The bench command runs end to end and prints every figure as a JSON line (no timing asserted:
timings belong in the benchmark's output, not in tests)."""

import json
import sys

import pytest

from tests.conftest import REPO
from tests import launcher

FIGURES = {"train_samples_per_s", "bare_step_samples_per_s", "train_vs_bare", "paper_fold_hours",
           "pipeline_examples_per_s", "pipeline_vs_train", "infer_ms_batch1", "infer_ms_batch8",
           "savedmodel_infer_ms_batch1", "infer_gflop_batch1", "infer_gflop_per_s",
           "griffin_lim_ms_per_audio_s", "vocoder_ms_per_audio_s", "vocoder_vs_griffin_lim",
           "matmul_gflop_per_s", "peak_rss_mb"}


def test_bench_prints_every_figure():
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.bench", "--batch=1", "--steps=1",
                         "--rounds=1", "--repeats=1"], cwd=REPO, capture_output=True,
                        text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
  figures = {line["metric"]: line for line in lines}
  assert FIGURES <= figures.keys()
  assert "cores" in figures["machine"]["value"] and "TensorFlow" in figures["machine"]["value"]
  for name in FIGURES:
    assert figures[name]["value"] > 0, figures[name]
  ratio = figures["train_samples_per_s"]["value"] / figures["bare_step_samples_per_s"]["value"]
  assert abs(ratio - figures["train_vs_bare"]["value"]) < 0.02
  # Table 1 by hand: 3x3x3 convolutions at each encoder stage's output size (in x out channels),
  # then 4x4 transposed convolutions at each decoder stage's input size.
  encoder = 27 * (26 * 128 * 128 * 1 * 32 + 13 * 64 * 64 * 32 * 32 + 7 * 32 * 32 * 32 * 64
                  + 4 * 16 * 16 * 64 * 64 + 2 * 8 * 8 * 64 * 128)
  decoder = 16 * (4 * 4 * 114 * 96 + 8 * 8 * 96 * 24 + 16 * 16 * 24 * 4 + 32 * 32 * 4 * 1)
  assert figures["infer_gflop_batch1"]["value"] == round(2 * (encoder + decoder) / 1e9, 2)
  voicing = figures["vocoder_ms_per_audio_s"]["value"] / figures["griffin_lim_ms_per_audio_s"]["value"]
  assert abs(voicing - figures["vocoder_vs_griffin_lim"]["value"]) < 0.01
  hours = 2 * 62 * 100 * 30 / figures["train_samples_per_s"]["value"] / 3600
  assert figures["paper_fold_hours"]["value"] == pytest.approx(hours, rel=0.01)


def test_paper_projection_uses_the_paper_config():
  from cmri2spec_tf.performance import benchmarks as bench

  with open(f"{REPO}/configs/paper.cfg") as f:
    flags = dict(line.strip("-\n").partition("=")[::2] for line in f if line.startswith("--"))
  assert int(flags["epochs"]) == bench.PAPER_EPOCHS and flags["split"] == "loso"
  from cmri2spec_tf.training.config import TrainConfig

  paper = TrainConfig(data_dir="", model_dir="")  # its defaults are the paper's: 63 subjects
  assert paper.phantom_ageese + paper.phantom_asouk == bench.PAPER_TRAINING_SUBJECTS + 1
  assert "phantom" not in flags  # the paper config never writes data where a user points it
  assert "pairs_per_epoch" not in flags  # every training example once per epoch
