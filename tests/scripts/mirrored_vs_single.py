"""Trains the same steps on one device and under MirroredStrategy on 2 logical CPUs.

  python tests/scripts/mirrored_vs_single.py PRECISION STEPS
prints one JSON line: the largest weight difference between the two runs and how far training
moved the weights. Logical devices must be set before TensorFlow starts, hence a script.
"""

import json
import sys

import tensorflow as tf

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cmri2spec_tf.training.trainer import build_trainer  # noqa: E402

PAIRS_PER_STEP = 4


def pairs(steps: int) -> tf.data.Dataset:
  rng = np.random.default_rng(0)
  n = steps * PAIRS_PER_STEP
  data = {f"mri_{m}": rng.random((n, 26, 128, 128, 1), dtype=np.float32) for m in "ab"}
  data.update({f"spec_{m}": rng.random((n, 64, 64, 1), dtype=np.float32) for m in "ab"})
  data["same_word"] = (np.arange(n) % 2).astype(np.int64)
  return tf.data.Dataset.from_tensor_slices(data).batch(PAIRS_PER_STEP, drop_remainder=True)


def trained_weights(strategy: tf.distribute.Strategy, steps: int, precision: str):
  keras.utils.set_random_seed(0)
  with strategy.scope():
    trainer = build_trainer(seed=0, precision=precision)
    initial = [w for m in trainer.networks for w in m.get_weights()]
    trainer.fit(pairs(steps), epochs=1, shuffle=False, verbose=0)
  return initial, [w for m in trainer.networks for w in m.get_weights()], trainer


def main(precision: str, steps: int) -> None:
  start, single, _ = trained_weights(tf.distribute.get_strategy(), steps, precision)
  mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  start_m, replicated, trainer = trained_weights(mirrored, steps, precision)
  print(json.dumps({
      "replicas": mirrored.num_replicas_in_sync,
      "same_start": max(float(np.abs(a - b).max()) for a, b in zip(start, start_m)),
      "max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(single, replicated)),
      "max_update": max(float(np.abs(a - b).max()) for a, b in zip(start, single)),
      "iterations": int(trainer.translator_optimizer.iterations.numpy()),
      "fast_clipnorm": {"single": fast_clipnorm(tf.distribute.get_strategy()),
                        "mirrored": fast_clipnorm(mirrored)}}))


def fast_clipnorm(strategy: tf.distribute.Strategy) -> float:
  """The fast recipe's translator clip built under `strategy` (Keras clips each replica's
  share)."""
  with strategy.scope():
    return float(build_trainer(recipe="fast").translator_optimizer.global_clipnorm)


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]))
