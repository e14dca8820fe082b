"""Writes the synthetic speech-MRI phantom dataset (DICOM cine series, WAV, manifest.csv); the
work is data/phantom.py's.

  python -m cmri2spec_tf.phantom --out_dir=data/phantom --ageese=43 --asouk=20 --seed=0
"""

import os
import time

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("out_dir", None, "Folder to write the dataset into.", required=True)
  flags.DEFINE_integer("ageese", 43, "Number of subjects saying 'ageese'.", lower_bound=0)
  flags.DEFINE_integer("asouk", 20, "Number of subjects saying 'asouk'.", lower_bound=0)
  flags.DEFINE_integer("seed", 0, "Random seed; the same seed writes the same files.")
  flags.DEFINE_integer("workers", os.cpu_count() or 1, "Processes to generate subjects with.",
                       lower_bound=1)


def main(argv):
  del argv
  from cmri2spec_tf.data import phantom

  start = time.perf_counter()
  subjects = phantom.generate(FLAGS.out_dir, FLAGS.ageese, FLAGS.asouk, FLAGS.seed, FLAGS.workers)
  print(f"wrote {len(subjects)} subjects to {FLAGS.out_dir} in {time.perf_counter() - start:.1f} s")


def entry():
  cli.start(define_flags, main, report_devices=False)  # NumPy and pydicom only


if __name__ == "__main__":
  entry()
