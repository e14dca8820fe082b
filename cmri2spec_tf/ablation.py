"""Trains and evaluates the rows of the paper's Table 2 over folds and seeds; writes the table.
The work is experiments/study.py's.

  python -m cmri2spec_tf.ablation --flagfile=configs/ablation_demo.cfg

Takes the training flags of `train` (data, epochs, batch, precision, ...) except those it sets per
job (model_dir, fold, seed, model, pair_disentangle, gan), plus --out_dir, --methods, --seeds and
--folds; `--help` lists them all. Jobs run one after another, each printing a line per epoch;
run the same command again after a stop and it resumes where it stopped. Writes
out_dir/table.md, table.csv, figure3.png, and significance.md / significance.csv: every row
against the full method, paired over the held-out subjects (Wilcoxon signed-rank p, effect
size, bootstrap interval; the table marks L1 differences that are not significant). With
--vocoder, the evaluations' speech metrics (and the TensorBoard audio) use that vocoder beside
Griffin-Lim.

On a cluster, every job is independent (its own folder under out_dir, resumable):
  --list_jobs                 prints the job ids, one per line (line i is job i)
  --job=ID                    runs that job only (an id or its line number)
  --shard=I --num_shards=N    runs jobs I, I+N, I+2N, ...
  (none of them)              inside a SLURM job array (SLURM_ARRAY_TASK_ID, with
                              SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job
                              (JOB_COMPLETION_INDEX; the count from --num_shards, else one job
                              per index), the task's share; elsewhere every job, then --collect
  --collect                   writes the table, tests and figure from the finished jobs and
                              lists the missing ones
A task of an array never writes the phantom (tasks would race): write it first.
"""

import os
import sys

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS
PER_JOB = ("model_dir", "fold", "seed", "model", "pair_disentangle", "gan")


def define_flags():
  cli.define_training_flags(skip=PER_JOB)
  flags.DEFINE_string("out_dir", None, "Where the jobs, table.md, table.csv and the figure go.",
                      required=True)
  flags.DEFINE_list("methods", ["lip2audspec", "ours_no_pair_no_gan", "ours_no_pair",
                                "ours_no_gan", "ours", "mean", "nearest_neighbour"],
                    "Rows of the table.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds (the paper: 3 random trials).")
  flags.DEFINE_list("folds", [], "Folds to run (default: every fold of --split).")
  flags.DEFINE_enum("eval_weights", "last", ["last", "best"], "Score each job's last epoch "
                    "(default: nothing chosen on the held-out subjects) or its best held-out "
                    "epoch (optimistic). Changing it re-evaluates finished jobs without "
                    "retraining.")
  flags.DEFINE_integer("audio_windows", 3, "Windows per held-out recording scored with the "
                       "speech metrics in each evaluation (0: none).", lower_bound=0)
  flags.DEFINE_bool("list_jobs", False, "Print the job ids (one per line, stable order) and "
                    "exit.")
  flags.DEFINE_string("job", None, "Run only this job: an id of --list_jobs or its 0-based line "
                      "number.")
  flags.DEFINE_integer("shard", None, "Run only jobs shard, shard + num_shards, ... (0-based).",
                       lower_bound=0)
  flags.DEFINE_integer("num_shards", None, "Number of shards (default: SLURM_ARRAY_TASK_COUNT, "
                       "else one job per shard).", lower_bound=1)
  flags.DEFINE_bool("collect", False, "Write table.md, table.csv, the significance tests and "
                    "figure3.png from the finished jobs; list the missing ones.")
  for name in ("seeds", "folds"):
    flags.register_validator(name, lambda values: all(v.isdigit() for v in values),
                             "must be a comma-separated list of non-negative integers")


def main(argv):
  del argv
  from cmri2spec_tf.experiments import study, training_run
  from cmri2spec_tf.base.errors import ConfigError
  from cmri2spec_tf.data.problems import DatasetProblems

  base = cli.config_from_flags(model_dir=FLAGS.out_dir, fold=0, seed=0, model="cmri2spec",
                               pair_disentangle=True, gan=True)
  trained, _ = study.check_methods(FLAGS.methods)
  seeds = [int(s) for s in FLAGS.seeds]
  task = _task()
  try:
    folds = _folds(base)
    jobs = study.plan_jobs(FLAGS.out_dir, trained, seeds, folds)
    if FLAGS.list_jobs:
      print("\n".join(study.job_id(j, FLAGS.out_dir) for j in jobs))
      return
    if FLAGS.collect:
      _collect(base, seeds, folds)
      return
    if task is not None:
      if not os.path.exists(base.data_dir):
        raise ConfigError(f"--data_dir={base.data_dir} does not exist: a task of a job array "
                          "reads an existing dataset (write the phantom first: python -m "
                          "cmri2spec_tf.phantom)")
      mine = study.select_jobs(jobs, FLAGS.out_dir, *task)
      print(f"this task: {len(mine)} of {len(jobs)} jobs: "
            f"{', '.join(study.job_id(j, FLAGS.out_dir) for j in mine) or 'none'}")
      study.run_jobs(base, mine, FLAGS.eval_weights, base.vocoder, FLAGS.audio_windows)
      print("done; when every task is done: the same command with --collect")
      return
    training_run.prepare_data(base)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    study.run_study(base, FLAGS.out_dir, FLAGS.methods, seeds, folds, FLAGS.eval_weights,
                    base.vocoder, FLAGS.audio_windows)
  except DatasetProblems as e:
    cli.fail(f"refusing to train on {base.data_dir}:\n{e}")
  except KeyboardInterrupt:
    print("\ninterrupted; run the same command again to resume", file=sys.stderr)
    sys.exit(130)
  _print_outputs()


def _task():
  """(job, shard, num_shards) of this process's share, or None for the whole study."""
  from cmri2spec_tf.experiments import study

  if FLAGS.job is not None:
    return FLAGS.job, None, None
  if FLAGS.shard is not None:
    return None, FLAGS.shard, FLAGS.num_shards
  array_task = study.task_from_environment(os.environ)
  if array_task is None:
    return None
  index, count = array_task
  return None, index, FLAGS.num_shards or count


def _folds(base) -> list[int]:
  """--folds, or every fold of --split: counted from the manifest's subjects, or (with --phantom
  and no dataset yet) from the phantom's size."""
  from cmri2spec_tf.base.errors import ConfigError
  from cmri2spec_tf.data import manifest, splits
  from cmri2spec_tf.data.problems import DatasetProblems
  from cmri2spec_tf.experiments import training_run

  if os.path.exists(manifest.locate(base.data_dir)[1]):
    records, problems = manifest.read_manifest(base.data_dir)
    if problems:
      raise DatasetProblems(problems)
    subjects, words = [r.subject_id for r in records], [r.word for r in records]
  elif training_run.phantom_needed(base):  # a missing folder without --phantom: ConfigError
    subjects = [f"S{i}" for i in range(base.phantom_ageese + base.phantom_asouk)]
    words = ["ageese"] * base.phantom_ageese + ["asouk"] * base.phantom_asouk
  else:
    raise ConfigError(f"--data_dir={base.data_dir}: no manifest.csv there; point it at a dataset "
                      "or add --phantom")
  n_folds = len(splits.make_folds(subjects, words, base.split, base.split_seed))
  folds = [int(f) for f in FLAGS.folds] or list(range(n_folds))
  if any(not 0 <= f < n_folds for f in folds):
    raise ConfigError(f"--folds={','.join(FLAGS.folds)}: split {base.split!r} of this dataset "
                      f"has folds 0-{n_folds - 1}")
  return folds


def _collect(base, seeds, folds) -> None:
  from cmri2spec_tf.experiments import study

  _, missing = study.collect(base, FLAGS.out_dir, FLAGS.methods, seeds, folds,
                             FLAGS.eval_weights)
  _print_outputs()
  if missing:
    print(f"\n{len(missing)} job(s) not finished, left out: "
          f"{', '.join(study.job_id(j, FLAGS.out_dir) for j in missing)}")
  else:
    print("\nevery job is finished")


def _print_outputs() -> None:
  from cmri2spec_tf.experiments import study

  with open(os.path.join(FLAGS.out_dir, study.TABLE_MD)) as f:
    print("\n" + f.read())
  print(f"wrote {study.TABLE_MD}, {study.TABLE_CSV}, {study.SIGNIFICANCE_MD}, "
        f"{study.SIGNIFICANCE_CSV} and {study.FIGURE_PNG} in {FLAGS.out_dir}")


def entry():
  # --list_jobs prints only the ids (scripts count them), without the device report
  cli.start(define_flags, main, report_devices=not any(a.startswith("--list_jobs")
                                                       and a != "--list_jobs=false"
                                                       for a in sys.argv[1:]))


if __name__ == "__main__":
  entry()
