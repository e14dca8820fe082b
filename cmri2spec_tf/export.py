"""Exports a trained run's translator as a SavedModel for TF Serving; the work is savedmodel.py's
(which documents the signatures).

  python -m cmri2spec_tf.export --model_dir=runs/demo --export_dir=serving/cmri2spec/1
      [--vocoder=runs/vocoder]   # adds the `waveform` signature: MRI -> audio samples
"""

from absl import flags, logging

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("model_dir", None, "A training run's model_dir.", required=True)
  flags.DEFINE_string("export_dir", None, "Version folder to create, e.g. serving/cmri2spec/1.",
                      required=True)
  flags.DEFINE_enum("weights", "best", ["best", "last", "model"], "best: the epoch with "
                    "the lowest L1 on the run's selection subjects, or without them on the "
                    "held-out ones; last; model: the run's model (the chosen epoch or the last).")
  flags.DEFINE_string("vocoder", None, "A vocoder folder (python -m cmri2spec_tf.vocoder): adds "
                      "the `waveform` signature (MRI -> audio at 22,050 Hz).")


def main(argv):
  del argv
  from cmri2spec_tf.serving import savedmodel

  logging.set_verbosity(logging.WARNING)  # TF's SavedModel INFO lines
  try:
    path = savedmodel.export(FLAGS.model_dir, FLAGS.export_dir, FLAGS.weights, FLAGS.vocoder)
  except OSError as e:  # an existing version, missing or unreadable files of the run
    cli.fail(f"error: {e}")
  print(f"exported the translator of {FLAGS.model_dir} to {path}\n"
        f"  serving_default: mri float32 [batch, 26, 128, 128, 1] -> spectrogram [batch, 64, 64, 1]\n"
        f"  mel_db:          mri -> spectrogram, mel_db (dB)\n"
        + ("  waveform:        mri -> spectrogram, waveform float32 [batch, samples] at 22,050 Hz\n"
           if FLAGS.vocoder else "") +
        f"  asset:           assets/{savedmodel.SPEC_PARAMS_ASSET}")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
