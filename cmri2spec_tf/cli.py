"""How a command is made: the one convention every command module follows.

A command module (train, evaluate, ablation, export, predict, bench, phantom, check_data) holds
only `define_flags()`, `main(argv)` and `entry()`; its work is done by one library module (the
README's "Code map"). `entry()` is both `python -m cmri2spec_tf.NAME` and the console script
`cmri2spec-NAME`: it sets the process's environment defaults, defines the flags, and runs main
under absl. Command modules import nothing heavy at the top, so that those defaults are in place
before TensorFlow loads. No flag is defined at import time.

This module also owns the flags that describe a training run (`define_training_flags`), shared
by `train` and `ablation`, and their mapping onto `config.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides our own output.
# oneDNN kernels: TensorFlow turns them on by default only on some x86 CPUs; on a 2-core AMD EPYC
# they made Conv3D ~10x and a training step ~5x faster. Users' own values win.
ENVIRONMENT_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def set_environment_defaults() -> None:
  """Sets what a process entry sets before TensorFlow loads (never on `import cmri2spec_tf`)."""
  for name, value in ENVIRONMENT_DEFAULTS.items():
    os.environ.setdefault(name, value)


def start(define_flags, main) -> None:
  """Runs one command: environment defaults, its flags, then main under absl."""
  set_environment_defaults()
  define_flags()
  app.run(main)


def fail(message: str) -> None:
  """Ends a command on bad data or files: the message on stderr, exit status 1."""
  print(message, file=sys.stderr)
  sys.exit(1)


# ------------------------------------------------------------------ training-run flags
def define_training_flags(skip=()) -> None:
  """The flags of config.TrainConfig, except those named in `skip` (set per job by the caller)."""
  from cmri2spec_tf.config import JIT_CHOICES, MODELS, STRATEGIES, TrainConfig
  from cmri2spec_tf.precision import PRECISIONS

  defaults = TrainConfig(data_dir="", model_dir="")
  define = {
      "data_dir": lambda: flags.DEFINE_string(
          "data_dir", None, "Dataset folder (manifest.csv). An empty or missing folder gets the "
          "phantom written into it.", required=True),
      "model_dir": lambda: flags.DEFINE_string(
          "model_dir", None, "Where checkpoints, logs and the model go.", required=True),
      "epochs": lambda: flags.DEFINE_integer(
          "epochs", defaults.epochs, "Total epochs (a resumed run counts the finished ones).",
          lower_bound=1),
      "batch_size": lambda: flags.DEFINE_integer(
          "batch_size", defaults.batch_size, "Pairs per step (2x examples).", lower_bound=1),
      "split": lambda: flags.DEFINE_string(
          "split", defaults.split, "'loso' (leave-one-subject-out) or a number of subject folds."),
      "fold": lambda: flags.DEFINE_integer(
          "fold", defaults.fold, "Which fold's subjects are held out.", lower_bound=0),
      "split_seed": lambda: flags.DEFINE_integer(
          "split_seed", defaults.split_seed, "Seed of the k-fold subject split (kept fixed so "
          "that --seed varies only the training)."),
      "seed": lambda: flags.DEFINE_integer(
          "seed", defaults.seed, "Seed for weights, pairs and the phantom."),
      "model": lambda: flags.DEFINE_enum(
          "model", defaults.model, MODELS, "cmri2spec (the paper's method) or lip2audspec (the "
          "baseline of Table 2; ignores --pair_disentangle and --gan)."),
      "precision": lambda: flags.DEFINE_enum(
          "precision", defaults.precision, PRECISIONS, "Keras dtype policy."),
      "strategy": lambda: flags.DEFINE_enum(
          "strategy", defaults.strategy, STRATEGIES, "tf.distribute strategy: default (one "
          "device), mirrored (every local GPU), multi_worker (TF_CONFIG cluster). --batch_size "
          "is the global batch."),
      "jit": lambda: flags.DEFINE_enum(
          "jit", defaults.jit, list(JIT_CHOICES), "XLA-compile the training and validation "
          "steps: auto (Keras: on with one GPU; off on CPUs, where it is about 10x slower, under "
          "--strategy and with --deterministic), on, off."),
      "pair_disentangle": lambda: flags.DEFINE_bool(
          "pair_disentangle", defaults.pair_disentangle, "Pairwise KL on the word content "
          "(Table 2 'PairDisen')."),
      "gan": lambda: flags.DEFINE_bool(
          "gan", defaults.gan, "Adversarial training (Table 2 'GAN')."),
      "beta": lambda: flags.DEFINE_float(
          "beta", defaults.beta, "Weight of the KL term for same-word pairs."),
      "lam": lambda: flags.DEFINE_float(
          "lam", defaults.lam, "Weight lambda of the adversarial term L_T."),
      "translator_lr": lambda: flags.DEFINE_float(
          "translator_lr", defaults.translator_lr, "Adam learning rate, encoder+decoder."),
      "discriminator_lr": lambda: flags.DEFINE_float(
          "discriminator_lr", defaults.discriminator_lr, "Adam learning rate, D."),
      "adam_beta_1": lambda: flags.DEFINE_float(
          "adam_beta_1", defaults.adam_beta_1, "Adam beta_1 (the paper's momentum)."),
      "same_word_share": lambda: flags.DEFINE_float(
          "same_word_share", defaults.same_word_share, "Share of same-word pairs.",
          lower_bound=0, upper_bound=1),
      "pairs_per_epoch": lambda: flags.DEFINE_integer(
          "pairs_per_epoch", None, "Pairs per epoch (default: every training example once).",
          lower_bound=1),
      "val_window_stride": lambda: flags.DEFINE_integer(
          "val_window_stride", defaults.val_window_stride, "Monitor held-out L1 during "
          "training on every n-th window (1: all).", lower_bound=1),
      "cache_dir": lambda: flags.DEFINE_string(
          "cache_dir", None, "Preprocessing cache (default ~/.cache/cmri2spec_tf)."),
      "image_every": lambda: flags.DEFINE_integer(
          "image_every", defaults.image_every, "Write TensorBoard images every N epochs.",
          lower_bound=1),
      "audio_every": lambda: flags.DEFINE_integer(
          "audio_every", defaults.audio_every, "Write TensorBoard audio of the held-out "
          "examples (predicted and true, Griffin-Lim) every N epochs.", lower_bound=1),
      "n_images": lambda: flags.DEFINE_integer(
          "n_images", defaults.n_images, "Held-out examples shown in TensorBoard.",
          lower_bound=1),
      "verbose": lambda: flags.DEFINE_integer(
          "verbose", defaults.verbose, "Keras fit verbosity: 0, 1 (bar), 2 (line)."),
      "deterministic": lambda: flags.DEFINE_bool(
          "deterministic", defaults.deterministic, "Seeded Python/NumPy/TensorFlow and "
          "TensorFlow op determinism: the same run gives the same weights, bit for bit, on the "
          "same machine (slower on GPUs)."),
      "phantom_ageese": lambda: flags.DEFINE_integer(
          "phantom_ageese", defaults.phantom_ageese, "Phantom size on first use."),
      "phantom_asouk": lambda: flags.DEFINE_integer(
          "phantom_asouk", defaults.phantom_asouk, "Phantom size on first use."),
  }
  assert set(define) == {f.name for f in dataclasses.fields(TrainConfig)}
  for name, make in define.items():
    if name not in skip:
      make()
  if "jit" not in skip and "deterministic" not in skip:
    flags.register_multi_flags_validator(
        ["jit", "deterministic"], lambda f: not (f["jit"] == "on" and f["deterministic"]),
        "--jit=on and --deterministic do not go together (Keras turns XLA off under op "
        "determinism); drop one")


def config_from_flags(**overrides):
  """A config.TrainConfig from the training flags; `overrides` for those the caller sets itself."""
  from cmri2spec_tf.config import TrainConfig

  return TrainConfig(**{f.name: overrides[f.name] if f.name in overrides else FLAGS[f.name].value
                        for f in dataclasses.fields(TrainConfig)})


def training_flags_text(names) -> str:
  """The resolved flags among `names` as flagfile lines (the run's flags.txt)."""
  return "".join(FLAGS[n].serialize() + "\n" for n in names if FLAGS[n].value is not None)
