"""How the networks are optimized: the paper's recipe and a faster one (`--recipe`).

Table 1's layers and the objective (eqs. 1-6) are the same under every recipe; no parameter is
added. Only the optimization around them differs:

  paper  Sec. 3.2 as written: Adam (beta_1 0.5) at constant learning rates, 1e-3 for the
         translator and 1e-4 for the discriminator (--translator_lr, --discriminator_lr); the
         last weights are the model.
  fast   the same Adam with the translator's learning rate doubled (2e-3 at the default
         --translator_lr; the discriminator's unchanged), the translator's gradient clipped to
         a global norm of 100, and an exponential moving average of the translator's weights
         (momentum 0.9, Keras's optimizer EMA: about the last 10 steps) read wherever the model
         is read: per-epoch validation, the TensorBoard pictures, evaluate, export, predict,
         probe, explain. Checkpoints keep the raw weights (training resumes from them) and the
         average (in the optimizer's state).

The clip: the translator's gradient norm is about 300 at the start and 20-60 once the words
are learned, while Adam's second moment (beta_2 0.999) remembers about 1,000 steps; with the
paper's beta_1 of 0.5 a sudden large gradient moves the weights up to (1 - beta_1) /
sqrt(1 - beta_2), 16 times the learning rate, in one step. Clipped at 100, the first steps do
not dominate the second moment and a spike moves the weights no further than a gradient of norm
100 would (without it a run on a seven-word phantom lost about three epochs to such a jump:
0.0508 at 16 epochs, 0.0487 with it, seed 0). Keras clips before the replicas' gradients are
summed, so under a tf.distribute strategy each replica's share is clipped at 100 / replicas.

Chosen by measurement (docs/results.md): at 16 epochs on the demo fold held-out L1 0.0487 with
the fast recipe (0.0488 before the clip) against 0.0518 with the paper's. Tried and not kept: a
warm-up and cosine decay with augmentation (0.0568), the fast recipe with a cosine decay
(0.0509), starting the decoder at the mean spectrogram (it stays there: 0.0602 after 4 epochs),
smaller batches (the same level sooner, then overfitting), a longer weight average, weight
decay and MRI augmentation (no lower). Moving the training MRI is not part of any recipe: it is
the data's option `--shift_px` (data/pairs.py), which demo.cfg adds to the fast recipe.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from cmri2spec_tf.training.config import RECIPE_NAMES


@dataclasses.dataclass(frozen=True)
class Recipe:
  name: str
  translator_lr_scale: float = 1.0  # times --translator_lr
  ema_momentum: float | None = None  # None: no weight average
  translator_clipnorm: float | None = None  # the translator gradient's global norm; None: no clip


RECIPES = {  # keys: RECIPE_NAMES
    "paper": Recipe("paper"),
    "fast": Recipe("fast", translator_lr_scale=2.0, ema_momentum=0.9, translator_clipnorm=100.0),
}


def get(name: str) -> Recipe:
  if name not in RECIPES:
    raise ValueError(f"recipe must be one of {RECIPE_NAMES}, got {name!r}")
  return RECIPES[name]


def translator_adam(recipe: Recipe, learning_rate: float, beta_1: float) -> keras.optimizers.Adam:
  """The translator's Adam: the paper's, at the recipe's rate, keeping its weight average and
  clipping its gradient (each replica's share, under the strategy in scope)."""
  extra = {"use_ema": True, "ema_momentum": recipe.ema_momentum} if recipe.ema_momentum else {}
  if recipe.translator_clipnorm:
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    extra["global_clipnorm"] = recipe.translator_clipnorm / replicas
  return keras.optimizers.Adam(learning_rate * recipe.translator_lr_scale, beta_1=beta_1,
                               **extra)
