"""The train entry point end to end: smoke run, TensorBoard contents, refusal, precision and
determinism (resuming after a kill: test_crash.py)."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator

from cmri2spec_tf.base.machine import cpu_flags
from cmri2spec_tf.models.precision import slow_precision_note
from cmri2spec_tf.training.trainer import build_trainer
from tests.conftest import NO_PICTURES, REPO
from tests.conftest import smoke_command as _command
from tests import launcher


def _scalars_and_images(log_dir):
  accumulator = plugin_event_accumulator.EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
  accumulator.Reload()
  tags = accumulator.Tags()["tensors"]
  return accumulator, tags


def test_smoke_run_writes_model_dir(smoke_run):
  run, result = smoke_run
  for name in ("flags.txt", "config.json", "spec_params.json", "summary.json", "best.json",
               "translator.keras",
               "best.weights.h5", "checkpoints/state.json", "checkpoints/epoch-0002.weights.h5"):
    assert (run / name).exists(), name
  flags_text = (run / "flags.txt").read_text()
  assert "--epochs=2" in flags_text and "--precision=float32" in flags_text
  assert json.loads((run / "spec_params.json").read_text())["db_min"] == -80.0
  summary = json.loads((run / "summary.json").read_text())
  assert summary["epochs"] == 2 and 0 < summary["heldout_l1"] < 0.5
  assert summary["last_epoch"] == 2 and 0 < summary["last_heldout_l1"] < 0.5
  lookups = summary["lookups"]
  assert lookups["mean_spectrogram"] == pytest.approx(summary["mean_spectrogram_l1"])
  # the floor (each recording's own mean window) is below every lookup that sees one input
  assert 0 < lookups["recording_floor"] < min(lookups["word_mean"], lookups["nearest_neighbour"],
                                              lookups["mean_spectrogram"])
  last_line = result.stdout.strip().splitlines()[-1]
  assert last_line.startswith(f"held-out L1 {summary['last_heldout_l1']:.4f} (last epoch 2)")
  for level in ("mean-spectrogram baseline", "nearest neighbour", "word's mean",
                "recording-mean floor"):
    assert level in last_line, level
  assert not [f for f in os.listdir(run / "checkpoints") if f.endswith(".tmp")]


def test_tensorboard_holds_losses_heldout_l1_learning_rates_and_images(smoke_run):
  run, _ = smoke_run
  train, tags = _scalars_and_images(run / "logs" / "train")
  assert {"epoch_loss", "epoch_l_mse", "epoch_l_kl", "epoch_l_t", "epoch_l_dis"} <= set(tags)
  assert len(train.Tensors("epoch_l_mse")) == 2
  validation, tags = _scalars_and_images(run / "logs" / "validation")
  assert "epoch_l1" in tags
  l1 = [float(tf.make_ndarray(e.tensor_proto)) for e in validation.Tensors("epoch_l1")]
  assert len(l1) == 2 and all(0 < v < 0.5 for v in l1)
  heldout, tags = _scalars_and_images(run / "logs" / "heldout")
  assert {"learning_rate/translator", "learning_rate/discriminator",
          "heldout/truth_prediction_error", "heldout/audio_prediction",
          "heldout/audio_truth", "heldout_speech/stoi", "heldout_speech/estoi",
          "heldout_speech/mcd", "latent/pca"} <= set(tags)
  stoi = float(tf.make_ndarray(heldout.Tensors("heldout_speech/stoi")[0].tensor_proto))
  mcd = float(tf.make_ndarray(heldout.Tensors("heldout_speech/mcd")[0].tensor_proto))
  assert 0 < stoi < 1 and mcd > 0  # the predicted sound against the examples' own audio
  for tag in ("heldout/audio_prediction", "heldout/audio_truth"):
    clips = tf.make_ndarray(heldout.Tensors(tag)[0].tensor_proto)  # one encoded WAV per example
    assert clips.shape[0] == 2, clips.shape
    wav = clips.reshape(2, -1)[0, 0]
    assert wav.startswith(b"RIFF") and len(wav) > 2 * 21000  # 21,000 samples of 16 bit
  assert [e.step for e in heldout.Tensors("heldout/audio_prediction")] == [1]  # audio_every 5
  event = heldout.Tensors("heldout/truth_prediction_error")[0]
  # An image summary holds width, height, then one encoded PNG per example.
  strings = tf.make_ndarray(event.tensor_proto)
  assert len(strings) == 2 + 2 and strings[2].startswith(b"\x89PNG")
  lr = tf.make_ndarray(heldout.Tensors("learning_rate/translator")[0].tensor_proto)
  assert abs(float(lr) - 1e-3) < 1e-9


def test_training_refuses_a_bad_dataset_before_starting(tmp_path, phantom_dir):
  import shutil

  shutil.copytree(phantom_dir, tmp_path / "data")
  with open(tmp_path / "data" / "subjects" / "S02" / "audio.wav", "w") as f:
    f.write("broken")
  result = launcher.run(_command(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert "refusing to train" in result.stderr
  assert "S02/audio.wav: unreadable audio file" in result.stderr
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_evaluate_writes_tables_that_match_per_example_evaluation(evaluated_smoke_run):
  from cmri2spec_tf.training import runs
  from cmri2spec_tf.data import dataset as dataset_lib
  from cmri2spec_tf.data import pairs
  from cmri2spec_tf.training.runs import load_config

  run, stdout = evaluated_smoke_run
  assert "per subject (cmri2spec)" in stdout and "nearest_neighbour" in stdout
  report = json.loads((run / runs.EVALUATION_JSON).read_text())
  config = load_config(str(run))
  _, heldout = dataset_lib.load_dataset(config.data_dir, cache_dir=config.cache_dir,
                                        verbose=False).fold(config.split, config.fold,
                                                            config.split_seed)
  assert report["heldout_subjects"] == list(heldout.subject_ids)
  assert report["parameters"]["cmri2spec"] == 629_597
  ours = report["methods"]["cmri2spec"]["overall"]
  assert ours["l1_db"] == pytest.approx(120 * ours["l1"], rel=1e-4)  # linear dB normalization
  # one forward pass per recording == Keras evaluate over every (mri, window) example
  assert report["weights_choice"] == "model" and report["weights"] == "epoch-0002.weights.h5"
  model = build_trainer()
  model.load_weights(str(run / "checkpoints" / "epoch-0002.weights.h5"))
  per_example = model.evaluate(pairs.examples_dataset(heldout, 50), verbose=0, return_dict=True)
  assert ours["l1"] == pytest.approx(per_example["l1"], abs=1e-5)
  assert ours["mse"] == pytest.approx(per_example["mse"], abs=1e-6)
  rows = (run / runs.EVALUATION_CSV).read_text().splitlines()
  assert rows[0].startswith("method,subject_id,word,l1,mse,l1_db,griffin_lim_stoi,")
  assert sum(r.startswith("truth,") for r in rows) == len(heldout) + 1  # the vocoder's ceiling
  assert sum(r.startswith("cmri2spec,") for r in rows) == len(heldout) + 1  # subjects + ALL
  with np.load(run / runs.PREDICTIONS_NPZ) as stored:
    assert stored["cmri2spec"].shape == (len(heldout), 64, 64)


def test_evaluate_refuses_a_folder_that_is_not_a_run(tmp_path):
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.evaluate",
                         f"--model_dir={tmp_path}"], cwd=REPO, capture_output=True, text=True,
                        timeout=120)
  assert result.returncode == 1
  assert f"{tmp_path}/config.json: missing or unreadable" in result.stderr
  assert not os.listdir(tmp_path)


def test_mixed_precision_run_matches_float32_held_out_l1(smoke_run, smoke_data, tmp_path):
  """Same seed and data, mixed_bfloat16 vs float32. (mixed_float16 is the GPU policy; on a CPU
  its float16 convolutions take minutes per smoke run, so its CPU tests are single steps:
  test_model.test_mixed_precision_step_runs_on_cpu and, with XLA,
  test_model.test_mixed_float16_xla_step_matches_float32.)"""
  run, _ = smoke_run
  result = launcher.run(_command(tmp_path, "--precision=mixed_bfloat16", *smoke_data,
                                 NO_PICTURES), cwd=REPO,
                        capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  mixed = json.loads((tmp_path / "run" / "summary.json").read_text())["heldout_l1"]
  full = json.loads((run / "summary.json").read_text())["heldout_l1"]
  assert abs(mixed - full) < 0.01, (mixed, full)
  slow_here = "amx_bf16" not in cpu_flags() and not tf.config.list_physical_devices("GPU")
  assert ("warning: mixed_bfloat16 on a CPU without AMX" in result.stderr) == slow_here


def test_slow_precision_note_names_the_slow_cases():
  avx512 = {"avx512f", "avx512_bf16"}
  assert "many times slower" in slow_precision_note("mixed_float16", False, avx512)
  assert "without AMX" in slow_precision_note("mixed_bfloat16", False, avx512)
  assert slow_precision_note("mixed_bfloat16", False, avx512 | {"amx_bf16"}) is None
  assert slow_precision_note("mixed_float16", True, set()) is None
  assert slow_precision_note("float32", False, set()) is None


def test_deterministic_runs_give_bit_identical_weights(smoke_run, tmp_path):
  """configs/smoke.cfg sets --deterministic: a second run, with its own phantom and cache as the
  first had, reproduces the first bit for bit (also without the TensorBoard pictures and sound,
  which must not touch the training)."""
  run, _ = smoke_run
  result = launcher.run(_command(tmp_path, NO_PICTURES), cwd=REPO, capture_output=True,
                        text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  heldout, tags = _scalars_and_images(tmp_path / "run" / "logs" / "heldout")
  assert set(tags) == {"learning_rate/translator", "learning_rate/discriminator"}  # no pictures
  assert [e.step for e in heldout.Tensors("learning_rate/translator")] == [1, 2]
  first, second = build_trainer(), build_trainer(seed=1)
  first.load_weights(str(run / "checkpoints" / "epoch-0002.weights.h5"))
  second.load_weights(str(tmp_path / "run" / "checkpoints" / "epoch-0002.weights.h5"))
  for network_a, network_b in zip(first.networks, second.networks):
    for a, b in zip(network_a.get_weights(), network_b.get_weights()):
      np.testing.assert_array_equal(a, b)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(smoke_run, tmp_path):
  import shutil

  shutil.copytree(smoke_run[0], tmp_path / "run")  # 2 finished epochs
  config = json.loads((tmp_path / "run" / "config.json").read_text())
  good = (tmp_path / "run" / "checkpoints" / "epoch-0002.weights.h5").read_bytes()
  # lambda beyond float32: the adversarial term, and so the loss, is infinite from the first
  # step. A run's definition changes only by its owner's hand (runs.check_definition): here
  # the stored config says the same lambda as the command.
  config["lam"] = 1e39
  (tmp_path / "run" / "config.json").write_text(json.dumps(config))
  command = _command(tmp_path, "--epochs=3", "--lam=1e39", f"--data_dir={config['data_dir']}",
                     f"--cache_dir={config['cache_dir']}")
  result = launcher.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 1, result.stderr[-3000:]
  assert "a loss became NaN or infinite in epoch 3" in result.stderr
  assert "last good checkpoint (epoch 2) is kept" in result.stderr
  state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
  assert state["epoch"] == 2
  assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == [
      "epoch-0001.weights.h5", "epoch-0002.weights.h5", "state.json"]
  assert (tmp_path / "run" / "checkpoints" / "epoch-0002.weights.h5").read_bytes() == good


def test_jit_on_with_deterministic_is_refused_before_anything_is_written(tmp_path):
  result = launcher.run(_command(tmp_path, "--jit=on"), cwd=REPO, capture_output=True,
                        text=True, timeout=120)
  assert result.returncode == 2  # a usage error (cli.py)
  assert "--jit=on and --deterministic do not go together" in result.stderr
  assert not os.listdir(tmp_path)
