"""The ablation study of Table 2: its rows, one training job per (seed, fold, row), the table.

Rows, top to bottom as in the paper, then two trivial baselines (and, L1 only, the reference
levels every evaluation holds: the word's mean and the recording-mean floor):
  lip2audspec          Lip2AudSpec re-implemented for MRI (models/lip2audspec.py)
  ours_no_pair_no_gan  the translator alone (MSE)
  ours_no_pair         + GAN
  ours_no_gan          + pairwise KL (PairDisen)
  ours                 + both: the full method
  mean                 the mean training spectrogram
  nearest_neighbour    the training recording with the closest MRI (evaluation/baselines.py)

Every trained row is `training_run.run` then `evaluation.evaluate_run` in
out_dir/<row>/seed-<s>/fold-<f>; a job whose evaluation.json exists is done, and a job that was
stopped resumes from its last epoch checkpoint, so the study resumes where it stopped. The
baselines are scored by the same evaluation of each fold.

Aggregation (the paper's "mean +- std over three random trials"): for each row and seed, the L1
over every held-out subject of every fold (each subject weighs the same); then the mean and the
sample standard deviation of those numbers over the seeds. The folds are the same for every seed
and row (TrainConfig.split_seed), so only the training's randomness varies.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import time

import keras
import numpy as np

from cmri2spec_tf.base import atomic
from cmri2spec_tf.evaluation import evaluation, significance
from cmri2spec_tf.speech import plots
from cmri2spec_tf.training import runs
from cmri2spec_tf.experiments import training_run
from cmri2spec_tf.data import clips
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.base.errors import ConfigError
from cmri2spec_tf.training.config import TrainConfig

ROWS = {
    "lip2audspec": ("Lip2AudSpec (re-implemented for MRI)",
                    dict(model="lip2audspec", pair_disentangle=False, gan=False)),
    "ours_no_pair_no_gan": ("Ours w/o PairDisen&GAN", dict(pair_disentangle=False, gan=False)),
    "ours_no_pair": ("Ours w/o PairDisen", dict(pair_disentangle=False, gan=True)),
    "ours_no_gan": ("Ours w/o GAN", dict(pair_disentangle=True, gan=False)),
    "ours": ("Ours", dict(pair_disentangle=True, gan=True)),
    "mean": ("Mean training spectrogram", None),
    "nearest_neighbour": ("Nearest neighbour (closest MRI)", None),
}
TABLE_MD, TABLE_CSV, FIGURE_PNG = "table.md", "table.csv", "figure3.png"
SIGNIFICANCE_MD, SIGNIFICANCE_CSV = "significance.md", "significance.csv"


@dataclasses.dataclass(frozen=True)
class Job:
  method: str
  seed: int
  fold: int
  model_dir: str

  def report(self, weights: str) -> dict | None:
    """Its evaluation report, if it has one made with these weights (the job is done)."""
    report = runs.read_evaluation(self.model_dir)
    if not isinstance(report, dict):
      return None
    return report if report.get("weights_choice", "best") == weights else None


def check_methods(methods) -> tuple[list[str], list[str]]:
  """(trained, baselines) in table order; unknown names or no trained row are errors."""
  unknown = [m for m in methods if m not in ROWS]
  if unknown:
    raise ConfigError(f"--methods: unknown {', '.join(unknown)}; known: {', '.join(ROWS)}")
  trained = [m for m in ROWS if m in methods and ROWS[m][1] is not None]
  if not trained:
    raise ConfigError("--methods: the study needs at least one trained method (the baselines "
                      "are scored on the folds of the trained ones)")
  return trained, [m for m in ROWS if m in methods and ROWS[m][1] is None]


def plan_jobs(out_dir: str, trained: list[str], seeds, folds) -> list[Job]:
  """Seeds, then folds one after another, then the rows of each fold."""
  return [Job(m, s, f, os.path.join(out_dir, m, f"seed-{s}", f"fold-{f}"))
          for s in seeds for f in folds for m in trained]


def job_config(base: TrainConfig, job: Job) -> TrainConfig:
  return dataclasses.replace(base, model_dir=job.model_dir, fold=job.fold, seed=job.seed,
                             verbose=0, **ROWS[job.method][1])


def run_job(base: TrainConfig, job: Job, weights: str = "last", vocoder: str | None = None,
            audio_windows: int = evaluation.AUDIO_WINDOWS) -> dict:
  """Trains (or resumes) and evaluates one job; a done job is only read back. A trained job
  evaluated with other weights is evaluated again (its training is finished: nothing reruns).
  Prints one line per epoch."""
  report = job.report(weights)
  if report is None:
    training_run.run(job_config(base, job),
                     epoch_label=f"{job.method} seed {job.seed} fold {job.fold}")
    report = evaluation.evaluate_run(job.model_dir, weights=weights, verbose=False,
                                     vocoder=vocoder, audio_windows=audio_windows)
    keras.backend.clear_session()
  return report


def run_study(base: TrainConfig, out_dir: str, methods, seeds, folds, weights: str = "last",
              vocoder: str | None = None,
              audio_windows: int = evaluation.AUDIO_WINDOWS) -> list[dict]:
  """Runs every job (resuming), then writes the table, the significance tests and the figure
  into out_dir (`collect`). `vocoder`, `audio_windows`: the evaluations' speech metrics."""
  trained, _ = check_methods(methods)
  run_jobs(base, plan_jobs(out_dir, trained, seeds, folds), weights, vocoder, audio_windows)
  return collect(base, out_dir, methods, seeds, folds, weights)[0]


def run_jobs(base: TrainConfig, jobs: list[Job], weights: str = "last",
             vocoder: str | None = None,
             audio_windows: int = evaluation.AUDIO_WINDOWS) -> dict:
  """Trains and evaluates the given jobs one after another (a done job is only read back);
  {job: its evaluation report}."""
  print(f"{len(jobs)} training jobs, {sum(j.report(weights) is not None for j in jobs)} already "
        f"done; evaluating the {weights} epoch's weights")
  reports = {}
  for i, job in enumerate(jobs):
    started, was_done = time.time(), job.report(weights) is not None
    reports[job] = run_job(base, job, weights, vocoder, audio_windows)
    l1 = own_result(reports[job])["overall"]["l1"]
    how = "done before" if was_done else f"{(time.time() - started) / 60:.1f} min"
    print(f"[{i + 1}/{len(jobs)}] {job.method} seed {job.seed} fold {job.fold}: held-out L1 "
          f"{l1:.4f} ({how})", flush=True)
  return reports


# ------------------------------------------------------------------ jobs on a cluster
def job_id(job: Job, out_dir: str) -> str:
  """A job's stable name: its folder under out_dir (row/seed-S/fold-F)."""
  return os.path.relpath(job.model_dir, out_dir)


def select_jobs(jobs: list[Job], out_dir: str, job: str | None = None,
                shard: int | None = None, num_shards: int | None = None) -> list[Job]:
  """The jobs one task runs: `job` (an id of `--list_jobs`, or its 0-based line number), or
  every num_shards-th job from `shard` (jobs i with i % num_shards == shard), or all."""
  if job is not None:
    ids = [job_id(j, out_dir) for j in jobs]
    if job in ids:
      return [jobs[ids.index(job)]]
    if job.isdigit() and int(job) < len(jobs):
      return [jobs[int(job)]]
    raise ConfigError(f"--job={job}: not a job of this study (ids and 0-{len(jobs) - 1}: see "
                      "--list_jobs)")
  if shard is None:
    return list(jobs)
  if num_shards is None:  # one job per task; a task past the last job has none
    return jobs[shard:shard + 1]
  if not 0 <= shard < num_shards:
    raise ConfigError(f"shard {shard} is not below the number of shards {num_shards}")
  return jobs[shard::num_shards]


def task_from_environment(environ) -> tuple[int, int | None] | None:
  """(task index, task count or None) of a scheduler's job array, or None outside one:
  SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN) with SLURM_ARRAY_TASK_COUNT (SLURM job
  arrays), or JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs, which give no count: --num_shards
  or one job per index)."""
  if environ.get("SLURM_ARRAY_TASK_ID", "").isdigit():
    index = int(environ["SLURM_ARRAY_TASK_ID"]) - int(environ.get("SLURM_ARRAY_TASK_MIN") or 0)
    count = environ.get("SLURM_ARRAY_TASK_COUNT", "")
    return index, int(count) if count.isdigit() else None
  if environ.get("JOB_COMPLETION_INDEX", "").isdigit():
    return int(environ["JOB_COMPLETION_INDEX"]), None
  return None


def finished_reports(jobs: list[Job], weights: str) -> tuple[dict, list[Job]]:
  """({job: report} of the finished jobs, the jobs not finished)."""
  reports = {job: job.report(weights) for job in jobs}
  return ({j: r for j, r in reports.items() if r is not None},
          [j for j, r in reports.items() if r is None])


def collect(base: TrainConfig, out_dir: str, methods, seeds, folds,
            weights: str = "last") -> tuple[list[dict], list[Job]]:
  """Writes the table, significance tests and figure from whatever jobs are finished; returns
  (table rows, jobs still missing). Rows with no finished job are left out; a row's numbers
  are over the seeds and subjects it has."""
  trained, baselines = check_methods(methods)
  reports, missing = finished_reports(plan_jobs(out_dir, trained, seeds, folds), weights)
  done = [m for m in trained if any(j.method == m for j in reports)]
  if not done:
    raise ConfigError(f"{out_dir}: no finished job to collect (run the jobs first)")
  seeds_done = [s for s in seeds if any(j.seed == s for j in reports)]
  rows = write_outputs(base, out_dir, reports, done, baselines, seeds_done, folds, weights)
  return rows, missing


def write_outputs(base: TrainConfig, out_dir: str, reports: dict, trained, baselines, seeds,
                  folds, weights: str) -> list[dict]:
  """table.md, table.csv, significance.md, significance.csv and figure3.png from the reports."""
  rows = aggregate(reports, trained, baselines, seeds)
  tests = comparisons(reports, trained, baselines, seeds)
  atomic.write_text(os.path.join(out_dir, TABLE_MD),
                    format_table(rows, base, seeds, folds, weights, tests))
  atomic.write_text(os.path.join(out_dir, TABLE_CSV), table_csv(rows))
  atomic.write_text(os.path.join(out_dir, SIGNIFICANCE_MD), format_comparisons(tests))
  atomic.write_text(os.path.join(out_dir, SIGNIFICANCE_CSV),
                    table_csv(tests) if tests else "method,reference,metric\n")
  first = next(iter(reports))  # the figure shows the first finished job's seed and fold
  atomic.write_bytes(os.path.join(out_dir, FIGURE_PNG),
                     figure(base, reports, trained, baselines, first.seed, first.fold))
  return rows


def subject_rows(reports: dict, method: str, trained, seed: int) -> list[dict]:
  """Every held-out subject's row of `method` in the jobs of `seed`, all folds (a baseline or a
  reference level is scored in every trained job of its fold: the first trained row's jobs are
  taken)."""
  source = method if method in trained else trained[0]
  return [row for job, report in reports.items() if job.method == source and job.seed == seed
          for row in _entry(report, method, trained)["subjects"]]


def _entry(report: dict, method: str, trained) -> dict:
  """`method`'s scores in one evaluation report ({"subjects": []} for a reference level an older
  report lacks)."""
  if method in trained:
    return own_result(report)
  if method in REFERENCE_ROWS:
    return report.get("references", {}).get(method, {"subjects": []})
  return report["methods"][method]


def aggregate(reports: dict, trained, baselines, seeds) -> list[dict]:
  """One row per method: mean and std over seeds of each metric (L1, MSE, L1 dB and the speech
  metrics the evaluations hold) over all folds' subjects; then the reference levels."""
  rows = []
  for method in trained + baselines:
    params = next((r["parameters"][r["model"]] for j, r in reports.items()
                   if j.method == method), None)
    rows.append(_seed_row(method, ROWS[method][0], params,
                          _per_seed(reports, method, trained, seeds)))
  return rows + reference_rows(reports, trained, seeds)


REFERENCE_ROWS = {"word_mean": "Word's mean (reference: told the word)",
                  "recording_mean": "Recording's own mean (reference: the floor)"}


def reference_rows(reports: dict, trained, seeds) -> list[dict]:
  """The lookup levels of every fold's evaluation (evaluation/baselines.references), aggregated
  as the rows are; not methods (told the word or the truth): never ranked or tested."""
  per_name = {name: _per_seed(reports, name, trained, seeds) for name in REFERENCE_ROWS}
  return [_seed_row(name, REFERENCE_ROWS[name], None, per_seed)
          for name, per_seed in per_name.items() if per_seed]


def _per_seed(reports: dict, method: str, trained, seeds) -> list[list[dict]]:
  """Each seed's subject rows of `method` (seeds without any left out)."""
  return [rows for rows in (subject_rows(reports, method, trained, seed) for seed in seeds)
          if rows]


def _seed_row(method: str, label: str, params, per_seed: list[list[dict]]) -> dict:
  """A table row: the mean and sample std over seeds of each metric's overall value."""
  row = {"method": method, "label": label, "parameters": params, "n_seeds": len(per_seed)}
  for metric in evaluation.metric_keys(per_seed[0]):
    values = [evaluation.overall(subjects)[metric] for subjects in per_seed]
    values = [v for v in values if v is not None]
    row[f"{metric}_mean"] = float(np.mean(values)) if values else None
    row[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
  return row


def per_subject_means(reports: dict, method: str, trained, seeds, metric: str) -> dict:
  """{subject: mean over seeds of `metric`} for `method` (subjects with no value left out)."""
  values: dict[str, list[float]] = {}
  for seed in seeds:
    for row in subject_rows(reports, method, trained, seed):
      if row.get(metric) is not None:
        values.setdefault(row["subject_id"], []).append(row[metric])
  return {subject: float(np.mean(v)) for subject, v in values.items()}


def reference_method(trained) -> str:
  """The row every other row is compared with: the full method when it was run."""
  return "ours" if "ours" in trained else trained[-1]


def comparisons(reports: dict, trained, baselines, seeds) -> list[dict]:
  """Paired tests (evaluation/significance.py) of every other row against the reference row, per
  metric, over the held-out subjects (per-subject means over seeds)."""
  reference = reference_method(trained)
  metrics = evaluation.metric_keys(subject_rows(reports, reference, trained, seeds[0]))
  out = []
  for metric in metrics:
    base = per_subject_means(reports, reference, trained, seeds, metric)
    for method in trained + baselines:
      other = per_subject_means(reports, method, trained, seeds, metric)
      subjects = sorted(set(base) & set(other))
      if method == reference or not subjects:
        continue
      test = significance.paired_test([other[s] for s in subjects], [base[s] for s in subjects])
      out.append({"method": method, "reference": reference, "metric": metric, **test})
  return out


def format_comparisons(tests: list[dict]) -> str:
  """significance.md: one line per (row, metric) against the reference."""
  if not tests:
    return "No paired comparison: a single trained row and no baseline.\n"
  reference, n = tests[0]["reference"], tests[0]["n_subjects"]
  lines = [f"Each row against {ROWS[reference][0]} on the same {n} held-out subjects (per-subject "
           "means over seeds): Wilcoxon signed-rank test (two-sided), rank-biserial r, mean "
           "difference (row - reference) with its paired-bootstrap 95 % interval. Significant: "
           f"p < {significance.ALPHA}. With {n} subjects the smallest possible p is "
           f"{significance.smallest_p(n):.4f}.", "",
           "| Method | Metric | Mean difference | 95 % CI | r | p | Significant |",
           "| --- | --- | ---: | --- | ---: | ---: | --- |"]
  for t in tests:
    lines.append(f"| {ROWS[t['method']][0]} | {t['metric']} | {t['mean_difference']:+.4f} | "
                 f"[{t['ci95_low']:+.4f}, {t['ci95_high']:+.4f}] | {t['rank_biserial']:+.2f} | "
                 f"{t['p_value']:.4f} | {'yes' if t['significant'] else 'no'} |")
  return "\n".join(lines) + "\n"


def own_result(report: dict) -> dict:
  """The trained model's entry of an evaluation report (beside the baselines')."""
  return report["methods"][report["model"]]


def rank_marks(values: list[float], decimals: int = 3) -> list[str]:
  """'best' / 'second' / '' for each value, lower is better, compared as printed (ties share)."""
  shown = [round(v, decimals) for v in values]
  distinct = sorted(set(shown))
  marks = {distinct[0]: "best"} | ({distinct[1]: "second"} if len(distinct) > 1 else {})
  return [marks.get(v, "") for v in shown]


SPEECH_COLUMNS = (("stoi", "STOI", 3), ("estoi", "ESTOI", 3), ("mcd", "MCD dB", 2),
                  ("pesq", "PESQ", 2))


def format_table(rows: list[dict], base: TrainConfig, seeds, folds, weights: str = "last",
                 tests: list[dict] | None = None) -> str:
  """Markdown in the paper's style: L1 mean +- std, best in bold, second underlined; the L1
  difference to the reference row tested over the held-out subjects (significance.md); the
  speech metrics through the neural vocoder when the evaluations used one, else Griffin-Lim."""
  ranked = [r for r in rows if r.get("method") not in REFERENCE_ROWS]
  marks = rank_marks([r["l1_mean"] for r in ranked]) + [""] * (len(rows) - len(ranked))
  l1_tests = {t["method"]: t for t in tests or [] if t["metric"] == "l1"}
  reference = (tests or [{}])[0].get("reference")
  vocoder = "vocoder" if "vocoder_stoi_mean" in rows[0] else "griffin_lim"
  speech = [(f"{vocoder}_{key}", label, digits) for key, label, digits in SPEECH_COLUMNS
            if rows[0].get(f"{vocoder}_{key}_mean") is not None]
  head = ["Method", "Parameters", "L1"] + ([f"L1 vs {ROWS[reference][0]}"] if reference else [])
  head += ["L1 (dB)", "MSE"] + [f"{label} ({vocoder})" for _, label, _ in speech]
  lines = [f"L1 on held-out subjects (split {base.split}, folds {_span(folds)}, seeds "
           f"{_span(seeds)}, {base.epochs} epochs, {weights} epoch's weights; mean +- std over "
           "seeds). Best in bold, second underlined; the reference rows are lookups told the "
           "word or the truth, not methods, and are not ranked."
           + (f" 'L1 vs': Wilcoxon signed-rank p over the held-out subjects against "
              f"{ROWS[reference][0]}; n.s. = not significant at p < {significance.ALPHA} "
              "(the difference is within what chance gives; significance.md)." if reference
              else ""), "",
           "| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
  for row, mark in zip(rows, marks):
    l1 = f"{row['l1_mean']:.3f}±{row['l1_std']:.3f}"
    cells = [row["label"], f"{row['parameters']:,}" if row["parameters"] else "-",
             {"best": f"**{l1}**", "second": f"<u>{l1}</u>"}.get(mark, l1)]
    if reference:
      test = l1_tests.get(row["method"])
      cells.append("-" if test is None else
                   f"p={test['p_value']:.3f}" + ("" if test["significant"] else " n.s."))
    cells += [f"{row['l1_db_mean']:.2f}±{row['l1_db_std']:.2f}",
              f"{row['mse_mean']:.4f}±{row['mse_std']:.4f}"]
    cells += [_mean_std(row, key, digits) for key, _, digits in speech]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _mean_std(row: dict, key: str, digits: int) -> str:
  mean = row.get(f"{key}_mean")
  return "-" if mean is None else f"{mean:.{digits}f}±{row[f'{key}_std']:.{digits}f}"


def table_csv(rows: list[dict]) -> str:
  out = io.StringIO()
  writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  return out.getvalue()


def figure(base, reports, trained, baselines, seed, fold) -> bytes:
  """Fig. 3: for the first held-out recording of each word in one fold, the middle window's
  ground truth and every method's prediction, side by side."""
  data = clips.load_examples(base.pairing, base.data_dir, SpecParams(), base.clip_hop_s,
                             base.cache_dir, verbose=False)
  _, heldout = data.fold(base.split, fold, base.split_seed)
  predictions = {}
  for job, report in reports.items():
    if job.seed == seed and job.fold == fold:
      stored = runs.read_predictions(job.model_dir)
      predictions[job.method] = stored[report["model"]]
      for name in baselines:
        predictions.setdefault(name, stored[name])
  window = heldout.spectrograms.shape[1] // 2
  picks = [heldout.words.index(w) for w in dict.fromkeys(heldout.words)]
  grid = []
  for r in picks:
    panels = {"ground truth": heldout.spectrograms[r, window].astype(np.float32)}
    panels |= {ROWS[m][0]: predictions[m][r] for m in trained + baselines if m in predictions}
    grid.append((f"{heldout.subject_ids[r]} ('{heldout.words[r]}'), window {window}, fold {fold},"
                 f" seed {seed}", panels))
  return plots.spectrogram_grid_png(grid, data.params)


def _span(values) -> str:
  values = list(values)
  return f"{values[0]}-{values[-1]}" if values == list(range(values[0], values[-1] + 1)) and \
      len(values) > 2 else ", ".join(map(str, values))
