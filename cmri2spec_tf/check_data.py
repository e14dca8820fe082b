"""Reads a whole dataset and reports it: a per-subject summary and every problem with its file.

  python -m cmri2spec_tf.check_data --data_dir=DIR

Exit status 0 when the dataset is usable, 1 when any problem was found (training refuses such a
dataset with the same messages).
"""

import sys

from absl import app, flags

from cmri2spec_tf.data import dataset

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("data_dir", None, "Dataset folder holding manifest.csv.", required=True)


def run(data_dir: str) -> int:
  """Prints the report; returns the exit status."""
  summaries, problems = dataset.check_dataset(data_dir)
  if summaries:
    print(dataset.format_summary(summaries))
  words = sorted({s.word for s in summaries})
  print(f"\n{len(summaries)} usable recording(s), words: {', '.join(words) or '-'}; "
        f"{len(problems)} problem(s)")
  if problems:
    print(dataset.format_problems(problems), file=sys.stderr)
    return 1
  return 0


def main(argv):
  del argv
  sys.exit(run(FLAGS.data_dir))


if __name__ == "__main__":
  define_flags()
  app.run(main)
