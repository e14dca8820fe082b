"""Writes the manifest of the recordings in a folder laid out like a public speech-MRI dataset;
the work (and the file patterns of each layout) is data/layouts.py's.

  python -m cmri2spec_tf.index --layout=usc75 --root=data/usc75 --out=data/usc75/recordings.csv
  python -m cmri2spec_tf.index --layout=frames_wav --root=data/atr503 --frame_rate=13.8 \\
      --out=data/atr503/manifest.csv

Layouts: usc75 (USC 75-speaker), usctimit (USC-TIMIT avi with audio), frames_wav (ATR503-style
frame folders + wav), video_wav (one video + one wav, or the video's own audio, per recording).
Then: check_data --data_dir=OUT, segment (word segments from TextGrids), train.
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  from cmri2spec_tf.data.layouts import LAYOUTS

  flags.DEFINE_enum("layout", None, LAYOUTS, "How the folder is laid out.", required=True)
  flags.DEFINE_string("root", None, "The dataset folder.", required=True)
  flags.DEFINE_string("out", None, "The manifest to write (in --root or a folder above it).",
                      required=True)
  flags.DEFINE_float("frame_rate", None, "Frames per second, written to every row (needed for "
                     "image frames; videos carry their own).", lower_bound=0.001)


def main(argv):
  del argv
  from cmri2spec_tf.data import layouts
  from cmri2spec_tf.data.problems import DataError

  try:
    rows = layouts.index(FLAGS.layout, FLAGS.root, FLAGS.out, FLAGS.frame_rate)
  except DataError as e:
    cli.fail(f"error: {e}; nothing written")
  except OSError as e:  # a full disk (base/errors.py: WriteFailed names the file)
    cli.fail(f"error: {e}")
  subjects = len({r["subject_id"] for r in rows})
  print(f"wrote {len(rows)} recordings of {subjects} subjects to {FLAGS.out}")


def entry():
  cli.start(define_flags, main, report_devices=False)  # file names only


if __name__ == "__main__":
  entry()
