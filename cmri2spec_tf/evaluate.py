"""Evaluates a trained run on the held-out subjects of its fold (paper Table 2's L1); the work is
evaluation.py's.

  python -m cmri2spec_tf.evaluate --model_dir=runs/demo [--data_dir=D] [--weights=last|best]

Prints overall L1 / MSE / L1 in dB for the model and the mean-spectrogram and nearest-neighbour
baselines, then per-subject rows; writes the run's evaluation report, per-subject CSV and
predictions (evaluation.json, evaluation.csv, predictions.npz). The data folder, fold and split
default to those the run was trained with.
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("model_dir", None, "A training run's model_dir.", required=True)
  flags.DEFINE_string("data_dir", None, "Dataset folder (default: the one the run trained on).")
  flags.DEFINE_string("cache_dir", None, "Preprocessing cache (default: the run's).")
  flags.DEFINE_enum("weights", "last", ["last", "best"], "The last epoch (default: nothing chosen "
                    "on the held-out subjects), or the epoch with the best held-out L1 "
                    "(optimistic).")


def main(argv):
  del argv
  from cmri2spec_tf import evaluation, runs
  from cmri2spec_tf.data.problems import DatasetProblems

  try:
    report = evaluation.evaluate_run(FLAGS.model_dir, FLAGS.data_dir, FLAGS.cache_dir,
                                     FLAGS.weights)
  except DatasetProblems as e:
    cli.fail(f"cannot evaluate on this dataset:\n{e}")
  except OSError as e:  # missing or unreadable files of the run
    cli.fail(f"error: {e}")
  print(evaluation.format_report(report))
  print(f"wrote {runs.EVALUATION_JSON}, {runs.EVALUATION_CSV} and {runs.PREDICTIONS_NPZ} in "
        f"{FLAGS.model_dir}")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
