"""Which articulators make which sound: attribution maps (integrated gradients) and articulator
occlusion of a trained run; the work is evaluation/explaining.py's (the method:
evaluation/attribution.py).

  python -m cmri2spec_tf.explain --model_dir=runs/demo --out=out/explain            # held-out
  python -m cmri2spec_tf.explain --model_dir=runs/demo --mri=scans/S01/mri --out=out/S01

Prints one progress line, then the share of attribution on the articulators (where masks are
found beside the MRI, as the phantom writes them, or given with --masks) against their share of
the image, per output band group, and the occlusion table. Lip2AudSpec runs work the same way.
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("model_dir", None, "A training run's model_dir.", required=True)
  flags.DEFINE_string("out", None, "Folder for the maps, pictures and tables.", required=True)
  flags.DEFINE_string("mri", None, "One MRI source to explain (default: every held-out "
                      "recording of the run's fold).")
  flags.DEFINE_string("masks", None, "A masks.npz for --mri (labels [frames, 128, 128], legend; "
                      "default: the one beside it, if any).")
  flags.DEFINE_float("frame_rate", None, "The frame rate of --mri, where the file has none.",
                     lower_bound=0)
  flags.DEFINE_string("data_dir", None, "Dataset folder (default: the one the run trained on).")
  flags.DEFINE_integer("limit", None, "Explain only the first N held-out recordings.",
                       lower_bound=1)
  flags.DEFINE_integer("steps", 32, "Integrated-gradients steps (the path's resolution).",
                       lower_bound=1)
  flags.DEFINE_enum("weights", "best", ["best", "last", "model"], "best: the epoch with "
                    "the lowest L1 on the run's selection subjects, or without them on the "
                    "held-out ones; last; model: the run's model (the chosen epoch or the last).")


def main(argv):
  del argv
  from cmri2spec_tf.data.problems import DataError, DatasetProblems
  from cmri2spec_tf.evaluation import explaining

  try:
    if FLAGS.mri:
      examples = [explaining.single_example(FLAGS.mri, FLAGS.masks, FLAGS.frame_rate)]
    else:
      examples = explaining.heldout_examples(FLAGS.model_dir, FLAGS.data_dir, FLAGS.limit)
    summary = explaining.explain(FLAGS.model_dir, FLAGS.out, examples, FLAGS.weights,
                                 FLAGS.steps)
  except DataError as e:
    cli.fail(f"error: {e}")
  except DatasetProblems as e:
    cli.fail(f"cannot explain on this dataset:\n{e}")
  except OSError as e:
    cli.fail(f"error: {e}")
  print(explaining.format_summary(summary))
  print(f"wrote {summary['examples']} example(s) to {FLAGS.out} (summary.md)")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
