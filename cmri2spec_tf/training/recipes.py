"""How the networks are optimized: the paper's recipe and a faster one (`--recipe`).

Table 1's layers and the objective (eqs. 1-6) are the same under every recipe; no parameter is
added. Only the optimization around them differs:

  paper  Sec. 3.2 as written: Adam (beta_1 0.5) at constant learning rates, 1e-3 for the
         translator and 1e-4 for the discriminator (--translator_lr, --discriminator_lr); the
         last weights are the model.
  fast   the same Adam with the translator's learning rate doubled (2e-3 at the default
         --translator_lr; the discriminator's unchanged), and an exponential moving average of
         the translator's weights (momentum 0.9, Keras's optimizer EMA: about the last 10 steps)
         read wherever the model is read: per-epoch validation, the TensorBoard pictures,
         evaluate, export, predict, probe, explain. Checkpoints keep the raw weights (training
         resumes from them) and the average (in the optimizer's state).

Chosen by measurement on the demo fold (docs/results.md): at 16 epochs held-out L1 0.0488 with
the fast recipe against 0.0518 with the paper's. Tried and not kept: a warm-up and cosine decay
with augmentation (0.0568), the fast recipe with a cosine decay (0.0509), and starting the
decoder at the mean spectrogram (it stays there: 0.0602 after 4 epochs).
"""

from __future__ import annotations

import dataclasses

import keras

from cmri2spec_tf.training.config import RECIPE_NAMES


@dataclasses.dataclass(frozen=True)
class Recipe:
  name: str
  translator_lr_scale: float = 1.0  # times --translator_lr
  ema_momentum: float | None = None  # None: no weight average


RECIPES = {  # keys: RECIPE_NAMES
    "paper": Recipe("paper"),
    "fast": Recipe("fast", translator_lr_scale=2.0, ema_momentum=0.9),
}


def get(name: str) -> Recipe:
  if name not in RECIPES:
    raise ValueError(f"recipe must be one of {RECIPE_NAMES}, got {name!r}")
  return RECIPES[name]


def translator_adam(recipe: Recipe, learning_rate: float, beta_1: float) -> keras.optimizers.Adam:
  """The translator's Adam: the paper's, at the recipe's rate, keeping its weight average."""
  average = {"use_ema": True, "ema_momentum": recipe.ema_momentum} if recipe.ema_momentum else {}
  return keras.optimizers.Adam(learning_rate * recipe.translator_lr_scale, beta_1=beta_1,
                               **average)
