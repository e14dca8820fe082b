"""Paired significance tests (significance.py) and their place in the ablation's outputs."""

import numpy as np
import pytest

from cmri2spec_tf.evaluation import significance
from cmri2spec_tf.experiments import study
from cmri2spec_tf.training.config import TrainConfig


def test_a_consistent_difference_is_significant_with_the_exact_p():
  rng = np.random.default_rng(0)
  a = rng.normal(0.05, 0.01, 12)
  test = significance.paired_test(a + 0.004 + rng.uniform(0, 1e-4, 12), a)
  assert test["p_value"] == pytest.approx(2 / 2 ** 12)  # every difference positive: exact test
  assert test["significant"] and test["rank_biserial"] == 1.0
  assert test["ci95_low"] < 0.00405 < test["ci95_high"] and test["ci95_low"] > 0.004


def test_noise_is_not_significant_and_few_subjects_never_are():
  rng = np.random.default_rng(1)
  a = rng.normal(0.05, 0.01, 12)
  test = significance.paired_test(a + rng.normal(0, 0.01, 12), a)
  assert not test["significant"] and test["p_value"] > 0.2
  assert abs(test["rank_biserial"]) < 0.5 and test["ci95_low"] < 0 < test["ci95_high"]
  five = significance.paired_test(np.arange(5.0) + 1, np.arange(5.0))
  assert five["p_value"] == pytest.approx(0.0625) and not five["significant"]
  assert five["smallest_possible_p"] == pytest.approx(0.0625)
  same = significance.paired_test(np.ones(4), np.ones(4))
  assert same["p_value"] == 1.0 and same["rank_biserial"] == 0.0
  with pytest.raises(ValueError, match="equal-length"):
    significance.paired_test([1.0, 2.0], [1.0])


def _reports(shift_by_method, subjects=8, seeds=(0, 1)):
  """Evaluation reports of 2 folds x seeds whose per-subject L1 is a fixed base plus a shift per
  method (a callable of the subject index) for the trained rows; `mean` is the baseline."""
  rng = np.random.default_rng(2)
  base = rng.uniform(0.04, 0.06, subjects)
  reports = {}
  for seed in seeds:
    for fold, part in enumerate((range(0, subjects // 2), range(subjects // 2, subjects))):
      for method, shift in shift_by_method.items():
        rows = [{"subject_id": f"S{i}", "word": "w", "l1": base[i] + shift(i) + 1e-4 * seed,
                 "mse": 0.1, "l1_db": 1.0} for i in part]
        means = [dict(r, l1=0.06 + 1e-3 * ((i * 7) % 3 - 1)) for r, i in zip(rows, part)]
        reports[study.Job(method, seed, fold, f"{method}/{seed}/{fold}")] = {
            "model": "cmri2spec", "parameters": {"cmri2spec": 1},
            "methods": {"cmri2spec": {"subjects": rows}, "mean": {"subjects": means}}}
  return reports


def test_the_ablation_compares_every_row_with_the_full_method_per_subject():
  reports = _reports({"ours_no_gan": lambda i: 0.003, "ours_no_pair": lambda i: (-1) ** i * 1e-3,
                      "ours": lambda i: 0.0})
  trained, baselines, seeds = ["ours_no_pair", "ours_no_gan", "ours"], ["mean"], [0, 1]
  tests = {(t["method"], t["metric"]): t
           for t in study.comparisons(reports, trained, baselines, seeds)}
  worse = tests[("ours_no_gan", "l1")]
  assert worse["reference"] == "ours" and worse["n_subjects"] == 8
  assert worse["significant"] and worse["p_value"] == pytest.approx(2 / 2 ** 8)
  assert worse["mean_difference"] == pytest.approx(0.003)
  assert not tests[("ours_no_pair", "l1")]["significant"]  # +-0.001 alternating: no direction
  assert ("ours", "l1") not in tests
  rows = study.aggregate(reports, trained, baselines, seeds)
  table = study.format_table(rows, TrainConfig("d", "m", split="2"), seeds, [0, 1], "last",
                             list(tests.values()))
  line = {r.split(" | ")[0][2:]: r for r in table.splitlines() if r.startswith("| ")}
  assert "p=0.008 |" in line["Ours w/o GAN"] and "n.s." not in line["Ours w/o GAN"]
  assert "n.s." in line["Ours w/o PairDisen"]
  assert "| - |" in line["Ours"]  # the reference itself
  text = study.format_comparisons(list(tests.values()))
  assert "smallest possible p is 0.0078" in text and "| Ours w/o GAN | l1 | +0.0030 |" in text
