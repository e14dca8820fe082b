"""The bench command runs end to end and prints every figure as a JSON line (no timing asserted:
timings belong in the benchmark's output, not in tests)."""

import json
import subprocess
import sys

from tests.conftest import REPO

FIGURES = {"train_samples_per_s", "bare_step_samples_per_s", "train_vs_bare",
           "pipeline_examples_per_s", "pipeline_vs_train", "infer_ms_batch1", "infer_ms_batch8",
           "savedmodel_infer_ms_batch1", "peak_rss_mb"}


def test_bench_prints_every_figure():
  result = subprocess.run([sys.executable, "-m", "cmri2spec_tf.bench", "--batch=1", "--steps=1",
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
