"""One training run on one fold: data -> pairs -> trainer -> checkpoints, TensorBoard, summary.

`train` maps its flags onto a `config.TrainConfig` and calls `run`; the ablation (study.py) does the
same for each job. What the run writes and where is training/runs.py's; the trainer is
training/trainer.py's.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from cmri2spec_tf.evaluation import baselines, latents
from cmri2spec_tf.experiments import callbacks
from cmri2spec_tf.training import distribute, runs
from cmri2spec_tf.base import machine
from cmri2spec_tf.models import precision
from cmri2spec_tf.speech import vocoders
from cmri2spec_tf.data import dataset as dataset_lib
from cmri2spec_tf.data import clips, factors, pairs
from cmri2spec_tf.synthetic import phantom
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.base.errors import ConfigError
from cmri2spec_tf.training.config import TrainConfig


class TrainingDiverged(RuntimeError):
  """The loss became NaN or infinite; nothing of that epoch was saved."""


def phantom_needed(config: TrainConfig) -> bool:
  """Whether data_dir must first get the phantom; reads only. A data_dir that is missing or
  empty is a ConfigError unless the run asks for the phantom (`--phantom`): data is never
  invented where the user named a path."""
  folder = config.data_dir
  if os.path.isfile(folder) or (os.path.isdir(folder) and os.listdir(folder)):
    return False  # a manifest file, or a folder with something in it (check_data's to judge)
  state = "is empty" if os.path.isdir(folder) else "does not exist"
  if not config.phantom:
    raise ConfigError(f"--data_dir={folder} {state}: point it at a dataset folder (manifest.csv)"
                      ", or add --phantom to write the synthetic phantom there")
  if config.strategy == "multi_worker":
    raise ConfigError(f"--data_dir={folder} {state}: a multi-worker run reads an existing "
                      "dataset; write the phantom first (python -m cmri2spec_tf.phantom)")
  return True


def prepare_data(config: TrainConfig) -> None:
  """Checks data_dir (`phantom_needed`) and writes the phantom into it when asked for."""
  if not phantom_needed(config):
    return
  print(f"--phantom: writing the phantom into {config.data_dir} ({config.phantom_ageese} "
        f"'ageese', {config.phantom_asouk} 'asouk' subjects, seed {config.seed})")
  phantom.generate(config.data_dir, config.phantom_ageese, config.phantom_asouk,
                   seed=config.seed, workers=os.cpu_count() or 1)


def run(config: TrainConfig, flags_text: str | None = None,
        epoch_label: str | None = None, overwrite: bool = False) -> dict:
  """Trains (or resumes) one fold; returns the summary also written to summary.json.

  `flags_text`: the command line as a flagfile, written to the run folder once the settings are
  known to work. `epoch_label`: print one line per epoch starting with it (the ablation's jobs).
  Under a multi-worker strategy only the chief writes config.model_dir; the others write their
  own copy (distribute.write_dir) and resume from the chief's checkpoints.

  Nothing is written before the run is known to be this one (runs.check_definition: a folder
  holding another run is refused, or moved aside with `overwrite`), its data exists (or the
  phantom was asked for) and this process holds the folder's writer lock (runs.claim).
  """
  strategy = distribute.make_strategy(config.strategy)  # first: it may start the cluster
  distribute.check_batch_size(strategy, config.batch_size)
  resume_dir = config.model_dir
  runs.check_definition(resume_dir, config, overwrite)
  phantom_needed(config)
  config = dataclasses.replace(config, model_dir=distribute.write_dir(config.model_dir, strategy))
  with runs.claim(config.model_dir, overwrite and config.model_dir == resume_dir):
    prepare_data(config)
    return _run_claimed(config, resume_dir, strategy, flags_text, epoch_label)


def _run_claimed(config, resume_dir, strategy, flags_text, epoch_label) -> dict:
  """`run` once the folder is this process's. The run's files are written once its checkpoint
  (if any) has loaded: a checkpoint that does not fit stops it with the folder as it was."""
  runs.remove_stale_temporaries(config.model_dir)
  keras.utils.set_random_seed(config.seed)  # Python, NumPy and TensorFlow
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  warn_if_slow(config.precision)
  data = clips.load_examples(config.pairing, config.data_dir, SpecParams(), config.clip_hop_s,
                             config.cache_dir, verbose=config.verbose > 0)
  fold_train, heldout = data.fold(config.split, config.fold, config.split_seed)
  train, selection = fold_train, None
  if runs.chooses_on_selection(config):
    train, selection = fold_train.set_aside(config.selection_subjects, config.split_seed)
  with strategy.scope():  # models and both optimizers (notes: built inside the scope)
    model = runs.build_model(config)
    done = runs.restore_latest(model, resume_dir)
    if not done:
      init_output_bias(model, train)
  runs.write_config(config)
  if flags_text is not None:
    runs.write_flags(config.model_dir, flags_text)
  runs.write_spec_params(config.model_dir, data.params)
  # the lookups read every training subject of the fold, the selection subjects too
  baseline = baselines.mean_spectrogram_l1(fold_train, heldout, config.val_window_stride)
  heldout_subjects = list(dict.fromkeys(heldout.subject_ids))
  examples = "clips" if config.pairing == "time" else "recordings"
  print(f"fold {config.fold} ({config.split}): {len(set(fold_train.subject_ids))} training "
        f"subjects ({len(fold_train)} {examples}), held out {', '.join(heldout_subjects)} "
        f"({len(heldout)} {examples}); mean-spectrogram L1 on them {baseline:.4f}")
  if selection is not None:
    print(f"set aside to choose the epoch on: {', '.join(dict.fromkeys(selection.subject_ids))}"
          f" ({len(selection)} {examples}); the epoch with the lowest L1 on them is the model")
  if done:
    print(f"resumed after epoch {done} from {runs.checkpoint_dir(config.model_dir)} "
          f"(weights fingerprint {weights_fingerprint(model):.6f}); starting epoch {done + 1}")
  if strategy.num_replicas_in_sync > 1:
    print(f"{config.strategy} strategy: {strategy.num_replicas_in_sync} replicas, "
          f"{config.batch_size // strategy.num_replicas_in_sync} pairs each per step")
  if done < config.epochs:
    with strategy.scope():
      _fit(model, config, train, heldout, selection, done, epoch_label)
    if model.stop_training:  # TerminateOnNaN
      kept = runs.restore_latest(model, config.model_dir)
      raise TrainingDiverged(
          f"training stopped: a loss became NaN or infinite in epoch {kept + 1}; the last good "
          f"checkpoint (epoch {kept}) is kept in {runs.checkpoint_dir(config.model_dir)}. "
          "Lower the learning rates or check the data, then run again to resume from it.")
  if selection is not None:  # the chosen epoch is the model
    runs.load_weights(model, runs.weights_file(config.model_dir, "best")[0])
  model.use_average()  # training is over: inference reads the average (recipes.py), if any
  runs.save_translator(model, config)
  summary = summarize(config, fold_train, train, heldout, baseline, selection)
  runs.write_summary(config.model_dir, summary)
  print(final_line(summary))
  return summary


def summarize(config: TrainConfig, fold_train, trained, heldout, baseline: float,
              selection=None) -> dict:
  """summary.json: the last epoch's held-out L1, the best epoch's, and every lookup level on the
  same windows (from `fold_train`, the fold's whole training side: `trained`, the subjects
  trained on, and `selection`). The best epoch is chosen on the `selection` subjects where the
  run has them (`chosen_on`: "selection"; the run's model), else on the held-out ones
  ("heldout": optimistic, and the model is the last epoch)."""
  best, last = runs.read_best(config.model_dir), runs.read_state(config.model_dir) or {}
  lookups = baselines.lookup_levels(fold_train, heldout, config.val_window_stride)
  chosen = {"chosen_on": "heldout"} if selection is None else {
      "chosen_on": "selection", "selection_subjects": sorted(set(selection.subject_ids)),
      "selection_l1": best.get("sel_l1")}
  return {"fold": config.fold, "heldout_subjects": list(dict.fromkeys(heldout.subject_ids)),
          "training_subjects": sorted(set(trained.subject_ids)), "epochs": config.epochs,
          "last_epoch": last.get("epoch"), "last_heldout_l1": last.get("val_l1"),
          "best_epoch": best.get("epoch"), "heldout_l1": best.get("val_l1"), **chosen,
          "mean_spectrogram_l1": baseline, "lookups": lookups}


def final_line(summary: dict) -> str:
  """Training's last line: the held-out L1 of the run's model (the last epoch, or the one
  chosen on the selection subjects), then the other epoch (the best on the held-out subjects
  marked optimistic; or the last), then the lookups a model must beat."""
  last, best = summary["last_heldout_l1"], summary["heldout_l1"]
  lookups = summary["lookups"]
  if summary.get("chosen_on") == "selection" and best is not None:
    n = len(summary["selection_subjects"])
    head = (f"held-out L1 {best:.4f} (epoch {summary['best_epoch']}, chosen on {n} selection "
            f"subject{'s' if n != 1 else ''})")
    if last is not None and summary["best_epoch"] != summary["last_epoch"]:
      head += f"; last epoch {summary['last_epoch']} {last:.4f}"
  else:
    head = (f"held-out L1 {last:.4f} (last epoch {summary['last_epoch']})" if last is not None
            else "held-out L1 -")
    if best is not None and summary["best_epoch"] != summary["last_epoch"]:
      head += (f"; best {best:.4f} at epoch {summary['best_epoch']} (picked on these subjects: "
               "optimistic)")
  return (f"{head} vs mean-spectrogram baseline {summary['mean_spectrogram_l1']:.4f}; "
          f"nearest neighbour {lookups['nearest_neighbour']:.4f}, word's mean "
          f"{lookups['word_mean']:.4f}, recording-mean floor {lookups['recording_floor']:.4f}")


def warn_if_slow(name: str) -> None:
  """A warning on stderr when the precision is slower than float32 on this machine."""
  note = precision.slow_precision_note(name, machine.has_gpu(), machine.cpu_flags())
  if note:
    print(f"warning: {note}", file=sys.stderr)


def init_output_bias(model, train: dataset_lib.ArrayDataset) -> None:
  """Starts the sigmoid output at the training targets' mean level instead of 0.5.

  A standard initialisation (the data prior in the last bias): without it the first few hundred
  Adam steps on a CPU only move the output from 0.5 towards the noise floor of the spectrograms.
  """
  mean = float(np.clip(train.spectrograms.astype(np.float32).mean(), 1e-3, 1 - 1e-3))
  bias = model.output_layer().bias
  bias.assign(np.full(bias.shape, np.log(mean / (1 - mean)), dtype=np.float32))


def _fit(model, config, train, heldout, selection, done, epoch_label=None):
  train_pairs = pairs.pairs_dataset(train, config.batch_size, config.same_word_share,
                                    config.seed, first_epoch=done,
                                    pairs_per_epoch=config.pairs_per_epoch,
                                    deterministic=config.deterministic,
                                    shift_px=config.shift_px)
  heldout_recordings = pairs.recordings_dataset(heldout, batch_size=8,
                                                window_stride=config.val_window_stride)
  logs = runs.tensorboard_dirs(config.model_dir)
  picks = callbacks.held_out_picks(heldout, config.n_images)
  images = callbacks.held_out_examples(heldout, picks)
  lines = [callbacks.EpochLine(epoch_label, config.epochs)] if epoch_label else []
  choose = [] if selection is None else [callbacks.SelectionL1(pairs.recordings_dataset(
      selection, batch_size=8, window_stride=config.val_window_stride))]
  model.fit(train_pairs, epochs=config.epochs, initial_epoch=done,
            validation_data=heldout_recordings, verbose=config.verbose, shuffle=False,
            callbacks=[*choose,  # first: the others read its sel_l1
                       keras.callbacks.TensorBoard(logs["keras"], write_graph=False),
                       callbacks.HeldOutImages(logs["heldout"], *images, train.params,
                                               every=config.image_every,
                                               audio_every=config.audio_every,
                                               vocoder=vocoders.from_flag(config.vocoder,
                                                                          train.params),
                                               references=example_audio(config, heldout, picks),
                                               latent=latents.latent_inputs(
                                                   train, heldout,
                                                   factors.read_factors(config.data_dir))),
                       callbacks.AveragedWeights(),  # before the checkpoint: it saves raw
                       runs.EpochCheckpoint(config.model_dir,
                                            "val_l1" if selection is None else "sel_l1"),
                       keras.callbacks.TerminateOnNaN(), *lines])


def example_audio(config: TrainConfig, heldout, picks) -> np.ndarray | None:
  """[n, window_samples]: the recordings' own audio of the TensorBoard examples' windows; None
  for no examples."""
  if not picks:
    return None
  return np.stack([dataset_lib.window_audio(heldout, config.data_dir, [r], [k])[0, 0]
                   for r, k in picks])


def weights_fingerprint(model: keras.Model) -> float:
  """Sum of |w| over every weight of the method's networks: equal weights, equal sum."""
  return float(sum(np.abs(w).sum() for m in model.networks for w in m.get_weights()))
