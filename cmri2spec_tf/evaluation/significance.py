"""Is a difference between two rows of Table 2 real? Paired tests over held-out subjects.

The unit is the held-out subject (the paper's protocol holds subjects out; recordings of one
subject are not independent): for each subject, a method's score is the mean over the seeds of
its score on that subject. Two methods are compared on the same subjects:

  Wilcoxon signed-rank test (scipy.stats.wilcoxon, two-sided; exact null distribution for fewer
  than 50 subjects without ties, its normal approximation otherwise; zero differences dropped,
  as Wilcoxon's original test does). Significant when p < ALPHA. With n subjects the smallest
  possible two-sided p is 2 / 2^n: fewer than 6 subjects can never reach 0.05, and the test says
  so rather than pretending.
  Effect size: the matched-pairs rank-biserial correlation r = (W+ - W-) / (W+ + W-) in [-1, 1]
  (Kerby 2014; W+ and W- the rank sums of positive and negative differences), the median and
  mean difference, and a paired bootstrap 95 % confidence interval of the mean difference
  (BOOTSTRAP_RESAMPLES resamples of subjects, percentile method, seed 0).
"""

from __future__ import annotations

import numpy as np

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 10_000


def smallest_p(n: int) -> float:
  """The smallest two-sided p-value an exact Wilcoxon test on n nonzero differences can give."""
  return min(1.0, 2.0 / 2 ** n) if n > 0 else 1.0


def rank_biserial(differences: np.ndarray) -> float:
  """Matched-pairs rank-biserial correlation of nonzero paired differences (0 when none)."""
  from scipy.stats import rankdata

  d = np.asarray(differences, np.float64)
  d = d[d != 0]
  if d.size == 0:
    return 0.0
  ranks = rankdata(np.abs(d))
  return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def bootstrap_ci(differences: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
  """Percentile 95 % interval of the mean of paired differences, resampling subjects."""
  d = np.asarray(differences, np.float64)
  rng = np.random.default_rng(seed)
  means = d[rng.integers(0, d.size, (resamples, d.size))].mean(axis=1)
  low, high = np.percentile(means, [2.5, 97.5])
  return float(low), float(high)


def paired_test(a: np.ndarray, b: np.ndarray) -> dict:
  """a vs b on the same subjects (a[i] and b[i] are subject i): the Wilcoxon signed-rank test
  of a - b, the effect sizes and the bootstrap interval. `significant` is p < ALPHA."""
  from scipy.stats import wilcoxon

  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1 or a.size == 0:
    raise ValueError(f"paired_test needs two equal-length 1-D score lists, got {a.shape} and "
                     f"{b.shape}")
  d = a - b
  nonzero = int(np.count_nonzero(d))
  p = float(wilcoxon(d, zero_method="wilcox").pvalue) if nonzero else 1.0
  low, high = bootstrap_ci(d)
  return {"n_subjects": int(d.size), "mean_difference": float(d.mean()),
          "median_difference": float(np.median(d)), "rank_biserial": rank_biserial(d),
          "p_value": p, "ci95_low": low, "ci95_high": high, "significant": p < ALPHA,
          "smallest_possible_p": smallest_p(nonzero)}
