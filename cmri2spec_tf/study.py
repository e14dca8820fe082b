"""The ablation study of Table 2: its rows, one training job per (seed, fold, row), the table.

Rows, top to bottom as in the paper, then two trivial baselines:
  lip2audspec          Lip2AudSpec re-implemented for MRI (models/lip2audspec.py)
  ours_no_pair_no_gan  the translator alone (MSE)
  ours_no_pair         + GAN
  ours_no_gan          + pairwise KL (PairDisen)
  ours                 + both: the full method
  mean                 the mean training spectrogram
  nearest_neighbour    the training recording with the closest MRI (baselines.py)

Every trained row is `training.run` then `evaluation.evaluate_run` in
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

from cmri2spec_tf import atomic, evaluation, plots, runs, training
from cmri2spec_tf.data import dataset as dataset_lib
from cmri2spec_tf.config import ConfigError, TrainConfig

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


def run_job(base: TrainConfig, job: Job, weights: str = "last") -> dict:
  """Trains (or resumes) and evaluates one job; a done job is only read back. A trained job
  evaluated with other weights is evaluated again (its training is finished: nothing reruns).
  Prints one line per epoch."""
  report = job.report(weights)
  if report is None:
    training.run(job_config(base, job),
                 epoch_label=f"{job.method} seed {job.seed} fold {job.fold}")
    report = evaluation.evaluate_run(job.model_dir, weights=weights, verbose=False)
    keras.backend.clear_session()
  return report


def run_study(base: TrainConfig, out_dir: str, methods, seeds, folds,
              weights: str = "last") -> list[dict]:
  """Runs every job (resuming), then writes table.md, table.csv and figure3.png into out_dir."""
  trained, baselines = check_methods(methods)
  jobs = plan_jobs(out_dir, trained, seeds, folds)
  print(f"{len(jobs)} training jobs ({len(trained)} rows x {len(seeds)} seeds x {len(folds)} "
        f"folds), {sum(j.report(weights) is not None for j in jobs)} already done; evaluating "
        f"the {weights} epoch's weights; writing to {out_dir}")
  bar = keras.utils.Progbar(len(jobs), unit_name="job")
  reports = {}
  for i, job in enumerate(jobs):
    started, was_done = time.time(), job.report(weights) is not None
    reports[job] = run_job(base, job, weights)
    l1 = own_result(reports[job])["overall"]["l1"]
    how = "done before" if was_done else f"{(time.time() - started) / 60:.1f} min"
    print(f"\n{job.method} seed {job.seed} fold {job.fold}: held-out L1 {l1:.4f} ({how})")
    bar.update(i + 1)
  rows = aggregate(reports, trained, baselines, seeds)
  atomic.write_text(os.path.join(out_dir, TABLE_MD),
                    format_table(rows, base, seeds, folds, weights))
  atomic.write_text(os.path.join(out_dir, TABLE_CSV), table_csv(rows))
  atomic.write_bytes(os.path.join(out_dir, FIGURE_PNG),
                     figure(base, reports, trained, baselines, seeds[0], folds[0]))
  return rows


def aggregate(reports: dict, trained, baselines, seeds) -> list[dict]:
  """One row per method: mean and std over seeds of the L1 (MSE, L1 dB) over all folds' subjects."""
  rows = []
  for method in trained + baselines:
    per_seed = {m: [] for m in evaluation.METRICS}
    params = next((r["parameters"][r["model"]] for j, r in reports.items()
                   if j.method == method), None)
    for seed in seeds:
      # a baseline is scored in every trained job of its fold: take the first row's
      source = method if method in trained else trained[0]
      subjects = [row for job, report in reports.items()
                  if job.method == source and job.seed == seed
                  for row in (own_result(report) if method in trained
                              else report["methods"][method])["subjects"]]
      for metric in evaluation.METRICS:
        per_seed[metric].append(float(np.mean([row[metric] for row in subjects])))
    row = {"method": method, "label": ROWS[method][0], "parameters": params,
           "n_seeds": len(seeds)}
    for metric, values in per_seed.items():
      row[f"{metric}_mean"] = float(np.mean(values))
      row[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    rows.append(row)
  return rows


def own_result(report: dict) -> dict:
  """The trained model's entry of an evaluation report (beside the baselines')."""
  return report["methods"][report["model"]]


def rank_marks(values: list[float], decimals: int = 3) -> list[str]:
  """'best' / 'second' / '' for each value, lower is better, compared as printed (ties share)."""
  shown = [round(v, decimals) for v in values]
  distinct = sorted(set(shown))
  marks = {distinct[0]: "best"} | ({distinct[1]: "second"} if len(distinct) > 1 else {})
  return [marks.get(v, "") for v in shown]


def format_table(rows: list[dict], base: TrainConfig, seeds, folds,
                 weights: str = "last") -> str:
  """Markdown in the paper's style: L1 mean +- std, best in bold, second underlined."""
  marks = rank_marks([r["l1_mean"] for r in rows])
  lines = [f"L1 on held-out subjects (split {base.split}, folds {_span(folds)}, seeds "
           f"{_span(seeds)}, {base.epochs} epochs, {weights} epoch's weights; mean +- std over "
           "seeds). Best in bold, second underlined.", "",
           "| Method | Parameters | L1 | L1 (dB) | MSE |", "| --- | ---: | ---: | ---: | ---: |"]
  for row, mark in zip(rows, marks):
    l1 = f"{row['l1_mean']:.3f}±{row['l1_std']:.3f}"
    l1 = {"best": f"**{l1}**", "second": f"<u>{l1}</u>"}.get(mark, l1)
    params = f"{row['parameters']:,}" if row["parameters"] else "-"
    lines.append(f"| {row['label']} | {params} | {l1} | {row['l1_db_mean']:.2f}±"
                 f"{row['l1_db_std']:.2f} | {row['mse_mean']:.4f}±{row['mse_std']:.4f} |")
  return "\n".join(lines) + "\n"


def table_csv(rows: list[dict]) -> str:
  out = io.StringIO()
  writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  return out.getvalue()


def figure(base, reports, trained, baselines, seed, fold) -> bytes:
  """Fig. 3: for the first held-out recording of each word in one fold, the middle window's
  ground truth and every method's prediction, side by side."""
  data = dataset_lib.load_dataset(base.data_dir, cache_dir=base.cache_dir, verbose=False)
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
    panels |= {ROWS[m][0]: predictions[m][r] for m in trained + baselines}
    grid.append((f"{heldout.subject_ids[r]} ('{heldout.words[r]}'), window {window}, fold {fold},"
                 f" seed {seed}", panels))
  return plots.spectrogram_grid_png(grid, data.params)


def _span(values) -> str:
  values = list(values)
  return f"{values[0]}-{values[-1]}" if values == list(range(values[0], values[-1] + 1)) and \
      len(values) > 2 else ", ".join(map(str, values))
