"""Prints the performance figures as JSON lines; the work (and the list of figures) is
performance/benchmarks.py's.

  python -m cmri2spec_tf.bench [--precision=float32] [--batch=8] [--jit] [--steps=6] [--rounds=3]
"""

from absl import flags, logging

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  from cmri2spec_tf.models.precision import PRECISIONS

  flags.DEFINE_enum("precision", "float32", PRECISIONS, "Keras dtype policy.")
  flags.DEFINE_integer("batch", 8, "Pairs per training step (2x examples).", lower_bound=1)
  flags.DEFINE_bool("jit", False, "XLA-compile the train step (jit_compile).")
  flags.DEFINE_integer("steps", 6, "Timed training steps per round (after 2 warm-up steps).",
                       lower_bound=1)
  flags.DEFINE_integer("rounds", 3, "Rounds alternating the trainer and the bare step; the best "
                       "of each is reported.", lower_bound=1)
  flags.DEFINE_integer("repeats", 40, "Timed inference calls.", lower_bound=1)


def main(argv):
  del argv
  from cmri2spec_tf.performance import benchmarks

  logging.set_verbosity(logging.WARNING)  # TF's SavedModel INFO lines
  benchmarks.run(FLAGS.precision, FLAGS.batch, FLAGS.jit, FLAGS.steps, FLAGS.rounds,
                 FLAGS.repeats)


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
