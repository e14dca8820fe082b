"""Trains the neural vocoder for the project's mel setting on a dataset's training subjects; the
work is speech/vocoders.py's (the generator is models/vocoder.py's).

  python -m cmri2spec_tf.vocoder --data_dir=data/phantom --model_dir=runs/vocoder --split=8 --fold=0
  python -m cmri2spec_tf.vocoder --flagfile=configs/vocoder_smoke.cfg

Give it the --split/--fold (and --split_seed) of the translator's run, so that the subjects that
run is scored on are never heard in training. A folder that already holds a vocoder is trained
further (--epochs more). Then `--vocoder=runs/vocoder` in predict, evaluate, train (TensorBoard
audio) and export uses it instead of Griffin-Lim.

Fine-tuned on a translator's predictions of its training subjects' whole recordings (their
split and fold are the run's; experiments/vocoder_finetuning.py), starting from a trained
vocoder that is left as it is:

  python -m cmri2spec_tf.vocoder --finetune_on=runs/rtmri_demo --init_from=runs/vocoder \
      --model_dir=runs/vocoder_finetuned --epochs=5
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  from cmri2spec_tf.speech.vocoders import VocoderConfig

  defaults = VocoderConfig("", "")
  flags.DEFINE_string("data_dir", None, "Dataset folder (manifest.csv) or manifest file; with "
                      "--finetune_on: the whole recordings (default: the run's data).")
  flags.DEFINE_string("model_dir", None, "Folder for vocoder.keras and vocoder.json.",
                      required=True)
  flags.DEFINE_string("split", defaults.split, "'loso' or a number of subject folds, as the "
                      "translator's run.")
  flags.DEFINE_integer("fold", defaults.fold, "Fold whose training subjects are heard.",
                       lower_bound=0)
  flags.DEFINE_integer("split_seed", defaults.split_seed, "Seed of the k-fold assignment.")
  flags.DEFINE_integer("seed", defaults.seed, "Seed of the weights and of the crops.")
  flags.DEFINE_integer("epochs", defaults.epochs, "Epochs.", lower_bound=1)
  flags.DEFINE_integer("steps_per_epoch", defaults.steps_per_epoch, "Batches per epoch.",
                       lower_bound=1)
  flags.DEFINE_integer("batch_size", defaults.batch_size, "Crops per batch.", lower_bound=1)
  flags.DEFINE_integer("crop_frames", defaults.crop_frames, "Mel frames per crop.",
                       lower_bound=8)
  flags.DEFINE_integer("channels", defaults.channels, "Width of the ConvNeXt backbone.",
                       lower_bound=8)
  flags.DEFINE_integer("blocks", defaults.blocks, "ConvNeXt blocks.", lower_bound=1)
  flags.DEFINE_float("learning_rate", defaults.learning_rate, "Adam learning rate.",
                     lower_bound=0.0)
  flags.DEFINE_float("mel_weight", defaults.mel_weight, "Weight of the log-mel L1 beside the "
                     "multi-resolution STFT loss.", lower_bound=0.0)
  flags.DEFINE_list("speeds", [f"{v:g}" for v in defaults.speeds], "Augmentation: each "
                    "recording also played at these speeds (resampled: F0, formants and tempo "
                    "scale together); 1 alone: none.")
  flags.register_validator("speeds", _positive_numbers, "must be comma-separated numbers > 0")
  flags.DEFINE_float("gain_db", defaults.gain_db, "Augmentation: each crop at a random gain "
                     "within +- this many dB.", lower_bound=0.0)
  flags.DEFINE_string("finetune_on", defaults.finetune_on, "A translator run (time-aligned, or "
                      "a word run with --data_dir= its whole recordings): learn to voice its "
                      "predictions of its training subjects' recordings.")
  flags.DEFINE_string("init_from", defaults.init_from, "A vocoder folder to start from (only "
                      "read); --model_dir must not hold a vocoder yet.")
  flags.DEFINE_integer("verbose", defaults.verbose, "Keras progress: 0 silent, 1 bar, 2 a line "
                       "per epoch.", lower_bound=0, upper_bound=2)


def main(argv):
  del argv
  import dataclasses

  from cmri2spec_tf.speech import vocoders
  from cmri2spec_tf.data.problems import DatasetProblems

  values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(vocoders.VocoderConfig)}
  config = vocoders.VocoderConfig(**values | {"data_dir": FLAGS.data_dir or "",
                                              "speeds": tuple(float(v) for v in FLAGS.speeds)})
  _check_sources()
  try:
    info = _train(config)
  except DatasetProblems as e:
    cli.fail(f"cannot train a vocoder on this dataset:\n{e}")
  except (OSError, RuntimeError) as e:
    cli.fail(f"error: {e}")
  print(f"wrote {vocoders.VOCODER_KERAS} and {vocoders.VOCODER_JSON} in {config.model_dir}: "
        f"{info['steps']} steps, {info['training_seconds'] / 60:.1f} min of training, final loss "
        f"{info['final_loss']:.4f}")


def _check_sources():
  """What the vocoder hears: --data_dir's audio, or --finetune_on's predictions (with that
  run's split and fold: other ones given would put its held-out subjects in training)."""
  if not FLAGS.finetune_on:
    if not FLAGS.data_dir:
      cli.usage_error("--data_dir is required (or --finetune_on=RUN)")
    return
  given = [f"--{name}" for name in ("split", "fold", "split_seed") if FLAGS[name].present]
  if given:
    cli.usage_error(f"{', '.join(given)}: with --finetune_on the run's own split and fold are "
                    "used (its held-out subjects are never heard); leave them out")


def _train(config):
  from cmri2spec_tf.speech import vocoders

  if not config.finetune_on:
    return vocoders.train(config)
  from cmri2spec_tf.experiments import vocoder_finetuning

  return vocoder_finetuning.finetune(config)


def _positive_numbers(values) -> bool:
  try:
    return bool(values) and all(float(v) > 0 for v in values)
  except ValueError:
    return False


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
