"""Trains CMRI2SPEC on one fold of a dataset (paper Sec. 2-3).

  python -m cmri2spec_tf.train --flagfile=configs/demo.cfg [--epochs=5 ...]

Flags given after --flagfile override it. The resolved flags are written to model_dir/flags.txt.
Run the same command again after a stop (Ctrl-C, kill) to resume from the last finished epoch.
"""

import dataclasses
import os
import sys

from absl import app, flags

from cmri2spec_tf import atomic
from cmri2spec_tf.data.problems import DatasetProblems

FLAGS = flags.FLAGS


def define_flags(exclude=()):
  """Defines the flags of TrainConfig; `exclude` names those another entry point sets itself."""
  from cmri2spec_tf.distribute import STRATEGIES
  from cmri2spec_tf.experiment import PRECISIONS, TrainConfig
  from cmri2spec_tf.trainer import JIT_CHOICES, MODELS

  defaults = TrainConfig(data_dir="", model_dir="")
  flags.DEFINE_string("data_dir", None, "Dataset folder (manifest.csv). An empty or missing "
                      "folder gets the phantom written into it.", required=True)
  flags.DEFINE_string("model_dir", None, "Where checkpoints, logs and the model go.", required=True)
  flags.DEFINE_integer("epochs", defaults.epochs, "Total epochs (a resumed run counts the "
                       "finished ones).", lower_bound=1)
  flags.DEFINE_integer("batch_size", defaults.batch_size, "Pairs per step (2x examples).",
                       lower_bound=1)
  flags.DEFINE_string("split", defaults.split, "'loso' (leave-one-subject-out) or a number of "
                      "subject folds.")
  flags.DEFINE_integer("fold", defaults.fold, "Which fold's subjects are held out.", lower_bound=0)
  flags.DEFINE_integer("split_seed", defaults.split_seed, "Seed of the k-fold subject split (kept "
                       "fixed so that --seed varies only the training).")
  flags.DEFINE_integer("seed", defaults.seed, "Seed for weights, pairs and the phantom.")
  flags.DEFINE_enum("model", defaults.model, MODELS, "cmri2spec (the paper's method) or "
                    "lip2audspec (the baseline of Table 2; ignores --pair_disentangle and --gan).")
  flags.DEFINE_enum("precision", defaults.precision, PRECISIONS, "Keras dtype policy.")
  flags.DEFINE_enum("strategy", defaults.strategy, STRATEGIES, "tf.distribute strategy: default "
                    "(one device), mirrored (every local GPU), multi_worker (TF_CONFIG cluster). "
                    "--batch_size is the global batch.")
  flags.DEFINE_enum("jit", defaults.jit, list(JIT_CHOICES), "XLA-compile the training and "
                    "validation steps: auto (Keras: on with one GPU; off on CPUs, where it is "
                    "about 10x slower, under --strategy and with --deterministic), on, off.")
  flags.DEFINE_bool("pair_disentangle", defaults.pair_disentangle, "Pairwise KL on the word "
                    "content (Table 2 'PairDisen').")
  flags.DEFINE_bool("gan", defaults.gan, "Adversarial training (Table 2 'GAN').")
  flags.DEFINE_float("beta", defaults.beta, "Weight of the KL term for same-word pairs.")
  flags.DEFINE_float("lam", defaults.lam, "Weight lambda of the adversarial term L_T.")
  flags.DEFINE_float("translator_lr", defaults.translator_lr, "Adam learning rate, encoder+decoder.")
  flags.DEFINE_float("discriminator_lr", defaults.discriminator_lr, "Adam learning rate, D.")
  flags.DEFINE_float("adam_beta_1", defaults.adam_beta_1, "Adam beta_1 (the paper's momentum).")
  flags.DEFINE_float("same_word_share", defaults.same_word_share, "Share of same-word pairs.",
                     lower_bound=0, upper_bound=1)
  flags.DEFINE_integer("pairs_per_epoch", None, "Pairs per epoch (default: every training "
                       "example once).", lower_bound=1)
  flags.DEFINE_integer("val_window_stride", defaults.val_window_stride, "Monitor held-out L1 "
                       "during training on every n-th window (1: all).", lower_bound=1)
  flags.DEFINE_string("cache_dir", None, "Preprocessing cache (default ~/.cache/cmri2spec_tf).")
  flags.DEFINE_integer("image_every", defaults.image_every, "Write TensorBoard images every N epochs.",
                       lower_bound=1)
  flags.DEFINE_integer("audio_every", defaults.audio_every, "Write TensorBoard audio of the "
                       "held-out examples (predicted and true, Griffin-Lim) every N epochs.",
                       lower_bound=1)
  flags.DEFINE_integer("n_images", defaults.n_images, "Held-out examples shown in TensorBoard.",
                       lower_bound=1)
  flags.DEFINE_integer("verbose", defaults.verbose, "Keras fit verbosity: 0, 1 (bar), 2 (line).")
  flags.DEFINE_bool("deterministic", defaults.deterministic, "Seeded Python/NumPy/TensorFlow "
                    "and TensorFlow op determinism: the same run gives the same weights, bit for "
                    "bit, on the same machine (slower on GPUs).")
  flags.DEFINE_integer("phantom_ageese", defaults.phantom_ageese, "Phantom size on first use.")
  flags.DEFINE_integer("phantom_asouk", defaults.phantom_asouk, "Phantom size on first use.")
  for name in exclude:
    delattr(FLAGS, name)
  if "jit" not in exclude and "deterministic" not in exclude:
    flags.register_multi_flags_validator(
        ["jit", "deterministic"], lambda f: not (f["jit"] == "on" and f["deterministic"]),
        "--jit=on and --deterministic do not go together (Keras turns XLA off under op "
        "determinism); drop one")


def config_from_flags(**overrides):
  from cmri2spec_tf.experiment import TrainConfig

  return TrainConfig(**{f.name: overrides[f.name] if f.name in overrides else FLAGS[f.name].value
                        for f in dataclasses.fields(TrainConfig)})


def main(argv):
  del argv
  from cmri2spec_tf import experiment

  config = config_from_flags()
  os.makedirs(config.model_dir, exist_ok=True)
  names = [f.name for f in dataclasses.fields(type(config))]
  atomic.write_text(os.path.join(config.model_dir, "flags.txt"),
                    "".join(FLAGS[n].serialize() + "\n" for n in names if FLAGS[n].value is not None))
  try:
    experiment.run(config)
  except DatasetProblems as e:
    print(f"refusing to train on {config.data_dir}:\n{e}", file=sys.stderr)
    sys.exit(1)
  except experiment.TrainingDiverged as e:
    print(str(e), file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt:
    print("\ninterrupted; run the same command again to resume from the last finished epoch",
          file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
  define_flags()
  app.run(main)
