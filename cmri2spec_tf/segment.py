"""Cuts long recordings into word segments from Praat TextGrid alignments; the work is
data/alignments.py's (which says how alignments are found and words chosen).

  python -m cmri2spec_tf.segment --manifest=data/usc/recordings.csv --alignments=data/usc/tg \\
      --out=data/usc/words.csv [--words=a,b | --top_words=20] [--min_duration=0.15]
      [--max_duration=1.5] [--padding=0.05] [--tier=words]

Writes a manifest with start_s and end_s per word (every other column kept), ready for
check_data and train (--data_dir=data/usc/words.csv).
"""

import sys

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("manifest", None, "Manifest of long recordings.", required=True)
  flags.DEFINE_string("alignments", None, "Folder of <recording stem>.TextGrid files.",
                      required=True)
  flags.DEFINE_string("out", None, "The manifest of word segments to write.", required=True)
  flags.DEFINE_list("words", [], "Words to keep (default: see --top_words).")
  flags.DEFINE_integer("top_words", None, "Keep the N words said by the most subjects (default "
                       "without --words: every word).", lower_bound=1)
  flags.DEFINE_float("min_duration", 0.1, "Shortest word kept, seconds.", lower_bound=0)
  flags.DEFINE_float("max_duration", 2.0, "Longest word kept, seconds.", lower_bound=0)
  flags.DEFINE_float("padding", 0.0, "Seconds added before and after each word.", lower_bound=0)
  flags.DEFINE_string("tier", None, "The tier to read (default: 'words', 'word', or the first "
                      "tier whose name contains 'word').")
  flags.register_multi_flags_validator(
      ["min_duration", "max_duration"], lambda f: f["max_duration"] > f["min_duration"],
      "--max_duration must be above --min_duration")
  flags.register_multi_flags_validator(
      ["words", "top_words"], lambda f: not (f["words"] and f["top_words"]),
      "give --words or --top_words, not both")


def main(argv):
  del argv
  from cmri2spec_tf.data import alignments
  from cmri2spec_tf.data.problems import DataError

  choice = alignments.Choice(words=tuple(FLAGS.words), top=FLAGS.top_words,
                             min_duration=FLAGS.min_duration, max_duration=FLAGS.max_duration,
                             padding=FLAGS.padding, tier=FLAGS.tier)
  try:
    done = alignments.segment_manifest(FLAGS.manifest, FLAGS.alignments, FLAGS.out, choice)
  except DataError as e:
    cli.fail(f"error: {e}; nothing written")
  except OSError as e:  # a full disk (base/errors.py: WriteFailed names the file)
    cli.fail(f"error: {e}")
  for path in done["unaligned"]:
    print(f"warning: no alignment for {path}; its recording is left out", file=sys.stderr)
  for word, (segments, subjects) in done["words"].items():
    print(f"{word}: {segments} segment(s) of {subjects} subject(s)")
  print(f"wrote {done['segments']} segments to {FLAGS.out}")


def entry():
  cli.start(define_flags, main, report_devices=False)  # text files only


if __name__ == "__main__":
  entry()
