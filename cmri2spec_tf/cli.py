"""How a command is made: the one convention every command module follows.

A command module (train, evaluate, ablation, export, predict, serve_request, bench, phantom,
check_data, index, segment, vocoder, probe) holds only `define_flags()`, `main(argv)` and `entry()`; its work is done by a
library module (the README's "Code map"). `entry()` is both `python -m cmri2spec_tf.NAME` and the console script
`cmri2spec-NAME`: it sets the process's environment defaults, defines the flags, and runs main
under absl. Command modules import nothing heavy at the top, so that those defaults are in place
before TensorFlow loads. No flag is defined at import time.

Exit status: 0 done; 1 bad data or files (`fail`); 2 a usage error: a flag's value out of its
range (absl validators) or a setting that cannot work with this data or machine
(`config.ConfigError`), printed as one line "error: ...". `--flagfile=NAME` also finds the
configs installed with the package by name (`--flagfile=demo`).

This module also owns the flags that describe a training run (`define_training_flags`), shared
by `train` and `ablation`, and their mapping onto `config.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
HELP_FLAGS = {"--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}

# oneDNN kernels: TensorFlow turns them on by default only on some x86 CPUs; on a 2-core AMD EPYC
# they made Conv3D ~10x and a training step ~5x faster. Users' own values always win.
ENVIRONMENT_DEFAULTS = {"TF_ENABLE_ONEDNN_OPTS": "1"}
# TensorFlow's C++ INFO and WARNING lines are hidden only on machines without an NVIDIA driver,
# where none of them concerns a GPU; where there is a driver, its GPU-library warnings are shown.
CPU_ONLY_DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def set_environment_defaults() -> None:
  """Sets what a process entry sets before TensorFlow loads (never on `import cmri2spec_tf`)."""
  from cmri2spec_tf.base import machine

  defaults = ENVIRONMENT_DEFAULTS | (CPU_ONLY_DEFAULTS if machine.nvidia_driver() is None else {})
  for name, value in defaults.items():
    os.environ.setdefault(name, value)


def start(define_flags, main, report_devices: bool = True) -> None:
  """Runs one command: environment defaults, its flags, then main under absl; commands that
  compute with TensorFlow print the device report (base/machine.py) as their first line."""
  from cmri2spec_tf.base import machine
  from cmri2spec_tf.base.errors import ConfigError

  set_environment_defaults()
  if report_devices:
    machine.probe_gpus()  # first: importing Keras (the flags do) probes CUDA too
  before = set(FLAGS)
  define_flags()
  for name in set(FLAGS) - before:  # --help lists them, also under a console script
    FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])

  def main_after_report(argv):
    if report_devices:
      print(machine.device_report(_flag("precision"), _flag("strategy")), flush=True)
    try:
      return main(argv)
    except ConfigError as e:
      usage_error(str(e))

  app.run(main_after_report, flags_parser=parse_flags)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with packaged configs found by name and errors as one line, exit 2."""
  try:
    return FLAGS([argv[0]] + [_packaged_flagfile(arg) for arg in argv[1:]])
  except flags.Error as e:
    usage_error(str(e))
  except SystemExit:  # absl's --help and friends print the help and exit 1; asked for, it is 0
    if HELP_FLAGS & {arg.split("=")[0] for arg in argv[1:]}:
      sys.exit(0)
    raise


def usage_error(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _packaged_flagfile(arg: str) -> str:
  """--flagfile=NAME (demo, demo.cfg, configs/demo.cfg) -> the installed config, when NAME is
  not a file here; every other argument unchanged."""
  prefix = "--flagfile="
  if not arg.startswith(prefix) or os.path.exists(arg[len(prefix):]):
    return arg
  name = os.path.basename(arg[len(prefix):])
  for candidate in (name, name + ".cfg"):
    if os.path.isfile(os.path.join(CONFIGS, candidate)):
      return prefix + os.path.join(CONFIGS, candidate)
  return arg


def packaged_configs() -> list[str]:
  """Names of the configs installed with the package (`--flagfile=NAME`)."""
  return sorted(f[:-len(".cfg")] for f in os.listdir(CONFIGS) if f.endswith(".cfg"))


def _flag(name: str):
  return FLAGS[name].value if name in FLAGS else None


def fail(message: str) -> None:
  """Ends a command on bad data or files: the message on stderr, exit status 1."""
  print(message, file=sys.stderr)
  sys.exit(1)


def define_series_flags() -> None:
  """--mri, --out and --batch of the commands that translate series into files."""
  flags.DEFINE_string("mri", None, "A cine series (folder or multi-frame file); with --batch a "
                      "folder of series.", required=True)
  flags.DEFINE_string("out", None, "Output prefix (PREFIX.png/.npy/.wav); with --batch a folder.",
                      required=True)
  flags.DEFINE_bool("batch", False, "Translate every series in the folder --mri.")


# ------------------------------------------------------------------ training-run flags
def define_training_flags(skip=()) -> None:
  """The flags of config.TrainConfig, except those named in `skip` (set per job by the caller)."""
  from cmri2spec_tf.training.config import (JIT_CHOICES, MODELS, PAIRINGS, RECIPE_NAMES,
                                            STRATEGIES, TrainConfig)
  from cmri2spec_tf.models.precision import PRECISIONS

  defaults = TrainConfig(data_dir="", model_dir="")
  define = {
      "data_dir": lambda: flags.DEFINE_string(
          "data_dir", None, "Dataset folder (manifest.csv). With --phantom, a missing or empty "
          "folder gets the synthetic phantom written into it first.", required=True),
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
      "selection_subjects": lambda: flags.DEFINE_integer(
          "selection_subjects", defaults.selection_subjects, "Set this many of the fold's "
          "training subjects aside (stratified by word) and keep the epoch with the lowest L1 "
          "on them as the run's model (early stopping that never looks at the held-out "
          "subjects); 0: train on all and keep the last epoch. docs/training.md.",
          lower_bound=0),
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
          "beta", defaults.beta, "Weight of the KL term for same-word pairs.", lower_bound=0),
      "lam": lambda: flags.DEFINE_float(
          "lam", defaults.lam, "Weight lambda of the adversarial term L_T.", lower_bound=0),
      "translator_lr": lambda: flags.DEFINE_float(
          "translator_lr", defaults.translator_lr, "Adam learning rate, encoder+decoder.",
          lower_bound=0),
      "discriminator_lr": lambda: flags.DEFINE_float(
          "discriminator_lr", defaults.discriminator_lr, "Adam learning rate, D.",
          lower_bound=0),
      "adam_beta_1": lambda: flags.DEFINE_float(
          "adam_beta_1", defaults.adam_beta_1, "Adam beta_1 (the paper's momentum).",
          lower_bound=0, upper_bound=0.999),
      "recipe": lambda: flags.DEFINE_enum(
          "recipe", defaults.recipe, list(RECIPE_NAMES), "How the networks are optimized: "
          "paper (Sec. 3.2: constant learning rates, the last weights) or fast (twice the "
          "translator's learning rate, its gradient clipped to a global norm of 100, an average "
          "of its weights for evaluation and export; the same layers and objective). "
          "docs/training.md."),
      "pairing": lambda: flags.DEFINE_enum(
          "pairing", defaults.pairing, list(PAIRINGS), "What one example is: word (the paper's "
          "protocol: a recording or word segment, 26 frames over it, 100 windows of its sound) or "
          "time (whole recordings cut into clips of one window, the 26 frames over exactly the "
          "window's span; no word alignments needed). docs/training.md."),
      "clip_hop_s": lambda: flags.DEFINE_float(
          "clip_hop_s", defaults.clip_hop_s, "--pairing=time: seconds between clip starts.",
          lower_bound=0.01),
      "same_word_share": lambda: flags.DEFINE_float(
          "same_word_share", defaults.same_word_share, "Share of same-word pairs.",
          lower_bound=0, upper_bound=1),
      "shift_px": lambda: flags.DEFINE_float(
          "shift_px", defaults.shift_px, "Augment the training MRI: move each clip's frames "
          "together by up to this many pixels per axis (uniform, sub-pixel); 0: none, as the "
          "paper. The held-out MRI is never moved. docs/training.md.", lower_bound=0),
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
          "examples (predicted and true) and their speech metrics every N epochs.",
          lower_bound=1),
      "vocoder": lambda: flags.DEFINE_string(
          "vocoder", defaults.vocoder, "A vocoder folder (python -m cmri2spec_tf.vocoder) for "
          "the TensorBoard audio (default: Griffin-Lim)."),
      "n_images": lambda: flags.DEFINE_integer(
          "n_images", defaults.n_images, "Held-out examples shown in TensorBoard (0: no "
          "pictures or sound, only the scalars: for runs nobody watches).", lower_bound=0),
      "verbose": lambda: flags.DEFINE_integer(
          "verbose", defaults.verbose, "Keras fit verbosity: 0, 1 (bar), 2 (line).",
          lower_bound=0, upper_bound=2),
      "deterministic": lambda: flags.DEFINE_bool(
          "deterministic", defaults.deterministic, "Seeded Python/NumPy/TensorFlow and "
          "TensorFlow op determinism: the same run gives the same weights, bit for bit, on the "
          "same machine (slower on GPUs)."),
      "phantom": lambda: flags.DEFINE_bool(
          "phantom", defaults.phantom, "Write the synthetic phantom into --data_dir first when "
          "that folder is missing or empty (never into a folder that holds anything)."),
      "phantom_ageese": lambda: flags.DEFINE_integer(
          "phantom_ageese", defaults.phantom_ageese, "Phantom subjects saying 'ageese' "
          "(with --phantom).", lower_bound=0),
      "phantom_asouk": lambda: flags.DEFINE_integer(
          "phantom_asouk", defaults.phantom_asouk, "Phantom subjects saying 'asouk' "
          "(with --phantom).", lower_bound=0),
  }
  assert set(define) == {f.name for f in dataclasses.fields(TrainConfig)}
  for name, make in define.items():
    if name not in skip:
      make()
  _register_training_validators(set(define) - set(skip))


def _register_training_validators(defined: set[str]) -> None:
  """Checks that need no data, at parse time (the rest raise config.ConfigError later)."""
  if "split" in defined:
    flags.register_validator(
        "split", lambda v: v == "loso" or (v.isdigit() and int(v) >= 2),
        "must be 'loso' (leave-one-subject-out) or a number of subject folds >= 2")
  if {"split", "fold"} <= defined:
    flags.register_multi_flags_validator(
        ["split", "fold"], lambda f: not (f["split"] or "").isdigit()
        or f["fold"] < int(f["split"]),
        "--fold must be below the number of folds of --split (0 to k-1)")
  if {"pairs_per_epoch", "batch_size"} <= defined:
    flags.register_multi_flags_validator(
        ["pairs_per_epoch", "batch_size"],
        lambda f: f["pairs_per_epoch"] is None or f["pairs_per_epoch"] >= f["batch_size"],
        "--pairs_per_epoch must be at least --batch_size (one step per epoch)")
  if {"jit", "deterministic"} <= defined:
    flags.register_multi_flags_validator(
        ["jit", "deterministic"], lambda f: not (f["jit"] == "on" and f["deterministic"]),
        "--jit=on and --deterministic do not go together (Keras turns XLA off under op "
        "determinism); drop one")


def config_from_flags(**overrides):
  """A config.TrainConfig from the training flags; `overrides` for those the caller sets itself."""
  from cmri2spec_tf.training.config import TrainConfig

  return TrainConfig(**{f.name: overrides[f.name] if f.name in overrides else FLAGS[f.name].value
                        for f in dataclasses.fields(TrainConfig)})


def training_flags_text(names) -> str:
  """The resolved flags among `names` as flagfile lines (the run's flags.txt)."""
  return "".join(FLAGS[n].serialize() + "\n" for n in names if FLAGS[n].value is not None)
