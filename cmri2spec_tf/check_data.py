"""Reads a whole dataset and reports it: a per-subject summary and every problem with its file.
The work is data/dataset.py's.

  python -m cmri2spec_tf.check_data --data_dir=DIR [--cache_dir=CACHE]

Exit status 0 when the dataset is usable, 1 when any problem was found (training refuses such a
dataset with the same messages).
"""

import sys

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("data_dir", None, "Dataset folder holding manifest.csv.", required=True)
  flags.DEFINE_string("cache_dir", None, "Also store what was read in this preprocessing cache, "
                      "as training does (give train the same --cache_dir and it decodes nothing "
                      "again). Default: store nothing.")


def main(argv):
  del argv
  from cmri2spec_tf.data import dataset

  sys.exit(dataset.report(FLAGS.data_dir, FLAGS.cache_dir))


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
