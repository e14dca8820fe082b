"""What a trained run learns: latent probes, per-factor errors of its speech, a picture of its
latent space; the work is evaluation/probes.py's (which says how each is measured).

  python -m cmri2spec_tf.probe --model_dir=runs/demo [--data_dir=D] [--weights=model|last|best]

Prints the held-out L1 against its reference levels (mean spectrogram, the word's mean, each
recording's own mean), the probe table (word accuracy and F0 / vocal-tract length / duration R^2
from mu, s and both; needs the dataset's subjects.csv, which the phantom writes) and the
per-factor errors (F0, F1, F2, voicing onset and offset) of the model's prediction and of the
word's mean spectrogram; writes probes.json and latent.png into the run folder.
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("model_dir", None, "A training run's model_dir.", required=True)
  flags.DEFINE_string("data_dir", None, "Dataset folder (default: the one the run trained on).")
  flags.DEFINE_string("cache_dir", None, "Preprocessing cache (default: the run's).")
  flags.DEFINE_enum("weights", "model", ["model", "last", "best"], "The run's model (the last "
                    "epoch, or the one chosen on its selection subjects), the last epoch, or the "
                    "best: chosen on the selection subjects, else on the held-out ones.")


def main(argv):
  del argv
  from cmri2spec_tf.evaluation import probes
  from cmri2spec_tf.training import runs
  from cmri2spec_tf.data.problems import DatasetProblems

  try:
    report = probes.probe_run(FLAGS.model_dir, FLAGS.data_dir, FLAGS.cache_dir, FLAGS.weights)
  except DatasetProblems as e:
    cli.fail(f"cannot probe on this dataset:\n{e}")
  except OSError as e:
    cli.fail(f"error: {e}")
  print(probes.format_report(report))
  written = [runs.PROBES_JSON] + ([runs.LATENT_PNG] if "probes" in report else [])
  print(f"wrote {' and '.join(written)} in {FLAGS.model_dir}")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
