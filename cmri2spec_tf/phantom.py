"""Writes the synthetic speech-MRI phantom dataset; the work is data/phantom.py's (and
data/phantom_rtmri.py's for --rtmri).

  python -m cmri2spec_tf.phantom --out_dir=data/phantom --ageese=43 --asouk=20 --seed=0
  python -m cmri2spec_tf.phantom --rtmri --out_dir=data/rtmri --ageese=12 --asouk=12

Default: one DICOM cine series and WAV per subject, manifest.csv. --rtmri: one real-time
recording per subject (three words in a row: an mp4 with its sound, a WAV, a TextGrid of the
words) and recordings.csv, to cut into words with `segment`.
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
  flags.DEFINE_bool("rtmri", False, "Write each subject as one real-time MRI recording of three "
                    "words (video with sound, WAV, TextGrid) instead of a DICOM cine series.")


def main(argv):
  del argv
  from cmri2spec_tf.synthetic import phantom, phantom_rtmri

  start = time.perf_counter()
  try:
    if FLAGS.rtmri:
      count = phantom_rtmri.generate(FLAGS.out_dir, FLAGS.ageese, FLAGS.asouk, FLAGS.seed,
                                     FLAGS.workers)
      what = "real-time recordings (recordings.csv, alignments/)"
    else:
      count = len(phantom.generate(FLAGS.out_dir, FLAGS.ageese, FLAGS.asouk, FLAGS.seed,
                                   FLAGS.workers))
      what = "subjects (manifest.csv)"
  except OSError as e:  # a full disk: the OS error names the file
    cli.fail(f"error: {e}")
  print(f"wrote {count} {what} to {FLAGS.out_dir} in {time.perf_counter() - start:.1f} s")


def entry():
  cli.start(define_flags, main, report_devices=False)  # NumPy and pydicom only


if __name__ == "__main__":
  entry()
