"""Trains and evaluates the rows of the paper's Table 2 over folds and seeds; writes the table.
The work is study.py's.

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
  for name in ("seeds", "folds"):
    flags.register_validator(name, lambda values: all(v.isdigit() for v in values),
                             "must be a comma-separated list of non-negative integers")


def main(argv):
  del argv
  from cmri2spec_tf import study, training
  from cmri2spec_tf.data import dataset as dataset_lib
  from cmri2spec_tf.data import splits
  from cmri2spec_tf.data.problems import DatasetProblems

  from cmri2spec_tf.config import ConfigError

  base = cli.config_from_flags(model_dir=FLAGS.out_dir, fold=0, seed=0, model="cmri2spec",
                               pair_disentangle=True, gan=True)
  study.check_methods(FLAGS.methods)
  try:
    training.prepare_data(base)
    data = dataset_lib.load_dataset(base.data_dir, cache_dir=base.cache_dir)
    n_folds = len(splits.make_folds(data.subject_ids, data.words, base.split, base.split_seed))
    folds = [int(f) for f in FLAGS.folds] or list(range(n_folds))
    if any(not 0 <= f < n_folds for f in folds):
      raise ConfigError(f"--folds={','.join(FLAGS.folds)}: split {base.split!r} of this "
                        f"dataset has folds 0-{n_folds - 1}")
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    study.run_study(base, FLAGS.out_dir, FLAGS.methods, [int(s) for s in FLAGS.seeds], folds,
                    FLAGS.eval_weights, base.vocoder, FLAGS.audio_windows)
  except DatasetProblems as e:
    cli.fail(f"refusing to train on {base.data_dir}:\n{e}")
  except KeyboardInterrupt:
    print("\ninterrupted; run the same command again to resume", file=sys.stderr)
    sys.exit(130)
  with open(os.path.join(FLAGS.out_dir, study.TABLE_MD)) as f:
    print("\n" + f.read())
  print(f"wrote {study.TABLE_MD}, {study.TABLE_CSV}, {study.SIGNIFICANCE_MD}, "
        f"{study.SIGNIFICANCE_CSV} and {study.FIGURE_PNG} in {FLAGS.out_dir}")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
