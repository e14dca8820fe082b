"""Choosing the epoch on selection subjects (`--selection_subjects`): the split, and a training
run whose model is the epoch with the lowest L1 on subjects it neither trains on nor is scored
on."""

import json

import numpy as np
import pytest
import keras
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator

from cmri2spec_tf.base.errors import ConfigError
from cmri2spec_tf.data import splits
from cmri2spec_tf.training import runs
from tests import launcher
from tests.conftest import NO_PICTURES, smoke_command


def test_selection_subjects_are_stratified_deterministic_and_leave_two():
  subjects = [f"S{i:02d}" for i in range(12)]
  words = ["ageese"] * 8 + ["asouk"] * 4
  chosen = splits.selection_subjects(subjects, words, 4, seed=0)
  assert len(chosen) == 4 and set(chosen) <= set(subjects)
  word_of = dict(zip(subjects, words))
  assert sorted(word_of[s] for s in chosen) == ["ageese", "ageese", "asouk", "asouk"]
  assert chosen == splits.selection_subjects(subjects, words, 4, seed=0)
  assert chosen != splits.selection_subjects(subjects, words, 4, seed=1)
  assert len(set(splits.selection_subjects(subjects, words, 10, seed=0))) == 10
  for k in (0, 11):
    with pytest.raises(ConfigError, match=f"--selection_subjects={k}.*less 2 \\(10\\)"):
      splits.selection_subjects(subjects, words, k)


def _per_epoch(log_dir, tag):
  events = plugin_event_accumulator.EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
  events.Reload()
  return [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]


@pytest.fixture(scope="module")
def selection_run(tmp_path_factory):
  """6 phantom subjects, 2 folds: 3 training subjects, 1 of them set aside; 3 epochs."""
  out = tmp_path_factory.mktemp("selection")
  result = launcher.run(smoke_command(out, "--phantom_ageese=3", "--phantom_asouk=3",
                                      "--selection_subjects=1", "--epochs=3", NO_PICTURES),
                        timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return out / "run", result


def test_the_model_is_the_epoch_with_the_lowest_selection_l1(selection_run):
  run, result = selection_run
  summary = json.loads((run / "summary.json").read_text())
  (aside,) = summary["selection_subjects"]
  assert summary["chosen_on"] == "selection"
  assert aside not in summary["training_subjects"] + summary["heldout_subjects"]
  assert len(summary["training_subjects"]) == 2
  selection_l1 = _per_epoch(run / "logs" / "train", "epoch_sel_l1")
  heldout_l1 = _per_epoch(run / "logs" / "validation", "epoch_l1")
  assert len(selection_l1) == 3 and all(0 < v < 0.5 for v in selection_l1)
  chosen = int(np.argmin(selection_l1)) + 1
  best = json.loads((run / "best.json").read_text())
  assert best["epoch"] == summary["best_epoch"] == chosen
  assert best["sel_l1"] == pytest.approx(min(selection_l1), rel=1e-5)
  assert summary["heldout_l1"] == pytest.approx(heldout_l1[chosen - 1], rel=1e-5)
  assert summary["last_heldout_l1"] == pytest.approx(heldout_l1[-1], rel=1e-5)
  last_line = result.stdout.strip().splitlines()[-1]
  assert last_line.startswith(f"held-out L1 {summary['heldout_l1']:.4f} (epoch {chosen}, chosen "
                              "on 1 selection subject)")
  assert "word's mean" in last_line and "nearest neighbour" in last_line
  assert f"set aside to choose the epoch on: {aside} (1 recordings)" in result.stdout


def test_commands_read_the_chosen_epoch(selection_run):
  run, _ = selection_run
  best_file, epoch = runs.weights_file(str(run), "model")
  assert best_file.endswith(runs.BEST_WEIGHTS)
  assert epoch == json.loads((run / "best.json").read_text())["epoch"]
  chosen, _, _ = runs.load_translator(str(run), "model", precision="float32")
  saved = keras.saving.load_model(run / "translator.keras")
  for a, b in zip(chosen.get_weights(), saved.get_weights(), strict=True):
    np.testing.assert_array_equal(a, b)
  last, _, _ = runs.load_translator(str(run), "last", precision="float32")
  same_as_last = all(np.array_equal(a, b) for a, b in zip(last.get_weights(),
                                                           saved.get_weights()))
  assert same_as_last == (epoch == 3)
