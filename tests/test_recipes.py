"""The optimization recipes (training/recipes.py): the optimizers' settings, and the weight average
used wherever the model is read."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cmri2spec_tf.training import recipes, runs
from cmri2spec_tf.training.config import TrainConfig
from cmri2spec_tf.training.trainer import build_trainer


def test_the_paper_recipe_is_sec_3_2_and_the_fast_one_doubles_the_translator_rate():
  paper, fast = build_trainer(), build_trainer(recipe="fast")
  for trainer, rate in ((paper, 1e-3), (fast, 2e-3)):
    translator, discriminator = trainer.translator_optimizer, trainer.discriminator_optimizer
    assert float(translator.learning_rate) == pytest.approx(rate)
    assert float(discriminator.learning_rate) == pytest.approx(1e-4)  # unchanged in both
    assert float(translator.beta_1) == float(discriminator.beta_1) == 0.5
    assert not discriminator.use_ema
  assert not paper.translator_optimizer.use_ema and not paper.keeps_average()
  assert fast.translator_optimizer.use_ema and fast.translator_optimizer.ema_momentum == 0.9
  assert fast.translator_optimizer.global_clipnorm == 100.0
  assert paper.translator_optimizer.global_clipnorm is None
  assert discriminator.global_clipnorm is None
  assert float(build_trainer(recipe="fast", translator_lr=5e-4)
               .translator_optimizer.learning_rate) == pytest.approx(1e-3)
  with pytest.raises(ValueError, match="recipe must be one of"):
    recipes.get("faster")
  assert build_trainer().count_params() == fast.count_params()  # nothing added


def test_the_fast_recipe_clips_the_translator_gradient_to_a_global_norm_of_100():
  """After 300 steps of norm 10, a spike of norm 1000 moves the weights as a norm-100 gradient
  does, and less than Adam moves them on the whole spike."""
  def last_step(optimizer, gradients):
    weights = keras.Variable(np.zeros(8, np.float32))
    for g in gradients:
      before = weights.numpy()
      optimizer.apply([tf.constant(g, tf.float32)], [weights])
    return weights.numpy() - before

  rng = np.random.default_rng(0)
  unit = lambda v: v / np.linalg.norm(v)
  small = [10 * unit(rng.normal(size=8)) for _ in range(300)]
  spike = 1000 * unit(rng.normal(size=8))
  plain = lambda: keras.optimizers.Adam(2e-3, beta_1=0.5)
  clipped = last_step(recipes.translator_adam(recipes.get("fast"), 1e-3, 0.5), small + [spike])
  np.testing.assert_allclose(clipped, last_step(plain(), small + [spike / 10]), rtol=1e-4,
                             atol=1e-7)
  unclipped = last_step(plain(), small + [spike])
  assert np.linalg.norm(unclipped) > 1.5 * np.linalg.norm(clipped)


def _one_pair_batches(n):
  rng = np.random.default_rng(0)
  for _ in range(n):
    yield {"mri_a": rng.random((1, 26, 128, 128, 1), np.float32),
           "mri_b": rng.random((1, 26, 128, 128, 1), np.float32),
           "spec_a": rng.random((1, 64, 64, 1), np.float32),
           "spec_b": rng.random((1, 64, 64, 1), np.float32),
           "same_word": np.ones(1, np.float32)}


def test_weight_average_is_the_ema_of_the_steps_and_is_what_a_loaded_run_reads(tmp_path):
  """The fast recipe's translator average: the exponential moving average of the weights after
  each step (momentum ema_momentum, the first step copies); `use_average` swaps it in and
  `use_raw` back; load_trainer (evaluate, export, predict) and translator.keras read it."""
  momentum = recipes.get("fast").ema_momentum
  trainer = build_trainer(recipe="fast", gan=False, jit="off")
  assert trainer.keeps_average() and not build_trainer(gan=False).keeps_average()
  variables = trainer.translator_variables
  expected = None
  for batch in _one_pair_batches(3):
    trainer.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    now = [v.numpy() for v in variables]
    expected = now if expected is None else [momentum * e + (1 - momentum) * w
                                             for e, w in zip(expected, now)]
  raw = trainer.use_average()
  assert all(np.allclose(v.numpy(), e, atol=1e-6) for v, e in zip(variables, expected))
  assert max(float(np.abs(v.numpy() - r).max()) for v, r in zip(variables, raw)) > 1e-5
  trainer.use_raw(raw)
  assert all(np.array_equal(v.numpy(), r) for v, r in zip(variables, raw))

  config = TrainConfig(data_dir=str(tmp_path / "data"), model_dir=str(tmp_path / "run"),
                       gan=False, recipe="fast", jit="off")
  runs.write_config(config)
  runs.save_epoch(trainer, config.model_dir, 1)
  loaded = runs.load_trainer(config.model_dir, "last").trainer
  assert all(np.allclose(v.numpy(), e, atol=1e-6)
             for v, e in zip(loaded.translator_variables, expected))
  trainer.use_average()  # as training does before writing the translator
  import keras

  saved = keras.saving.load_model(runs.save_translator(trainer, config))
  assert all(np.allclose(w, e, atol=1e-6) for w, e in zip(saved.get_weights(),
                                                          [np.asarray(x) for x in expected]))

