"""Trains CMRI2SPEC on one fold of a dataset (paper Sec. 2-3); the work is training_run.py's.

  python -m cmri2spec_tf.train --flagfile=configs/demo.cfg [--epochs=5 ...]

Flags given after --flagfile override it. The resolved flags are written to model_dir/flags.txt.
Run the same command again after a stop (Ctrl-C, kill) to resume from the last finished epoch.
"""

import dataclasses
import sys

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  cli.define_training_flags()
  flags.DEFINE_bool("overwrite", False, "Start anew in a --model_dir that holds another run: "
                    "its contents are moved aside to <model_dir>.old-<time>, never deleted.")


def main(argv):
  del argv
  from cmri2spec_tf.experiments import training_run
  from cmri2spec_tf.base.errors import WriteFailed
  from cmri2spec_tf.data.problems import DatasetProblems
  from cmri2spec_tf.training import runs

  config = cli.config_from_flags()
  flags_text = cli.training_flags_text(f.name for f in dataclasses.fields(config))
  try:
    training_run.run(config, flags_text, overwrite=FLAGS.overwrite)
  except DatasetProblems as e:
    cli.fail(f"refusing to train on {config.data_dir}:\n{e}")
  except training_run.TrainingDiverged as e:
    cli.fail(str(e))
  except (runs.WeightsMismatch, WriteFailed) as e:
    cli.fail(f"error: {e}")
  except KeyboardInterrupt:
    print("\ninterrupted; run the same command again to resume from the last finished epoch",
          file=sys.stderr)
    sys.exit(130)


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
