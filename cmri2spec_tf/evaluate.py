"""Evaluates a trained run on the held-out subjects of its fold (paper Table 2's L1).

  python -m cmri2spec_tf.evaluate --model_dir=runs/demo [--data_dir=D] [--weights=last|best]

Prints overall L1 / MSE / L1 in dB for the model and the mean-spectrogram and nearest-neighbour
baselines, then per-subject rows; writes evaluation.json, evaluation.csv and predictions.npz into
model_dir. The data folder, fold and split default to those the run was trained with.
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A training run's model_dir.", required=True)
flags.DEFINE_string("data_dir", None, "Dataset folder (default: the one the run trained on).")
flags.DEFINE_string("cache_dir", None, "Preprocessing cache (default: the run's).")
flags.DEFINE_enum("weights", "last", ["last", "best"], "The last epoch (default: nothing chosen on "
                  "the held-out subjects), or the epoch with the best held-out L1 (optimistic).")


def main(argv):
  del argv
  from cmri2spec_tf import evaluation
  from cmri2spec_tf.data.problems import DatasetProblems

  try:
    report = evaluation.evaluate_run(FLAGS.model_dir, FLAGS.data_dir, FLAGS.cache_dir,
                                     FLAGS.weights)
  except DatasetProblems as e:
    print(f"cannot evaluate on this dataset:\n{e}", file=sys.stderr)
    sys.exit(1)
  except OSError as e:  # missing or unreadable files of the run
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(evaluation.format_report(report))
  print(f"wrote {evaluation.REPORT_JSON}, {evaluation.REPORT_CSV} and {evaluation.PREDICTIONS} "
        f"in {FLAGS.model_dir}")


if __name__ == "__main__":
  app.run(main)
