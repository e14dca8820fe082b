"""Numeric precision as a value: the Keras dtype policy a model is built under.

A Keras layer takes its dtype policy when it is made, so the policy only matters while models
are built. It is therefore never set for the whole process: the builders (models/,
training/trainer.py) take `precision` as an argument and build inside `dtype_policy(precision)`, which restores the
previous policy on the way out. This is the one place that calls `keras.config.set_dtype_policy`.

  float32         everything in float32 (the default; the fastest choice on CPUs)
  mixed_float16   float16 compute, float32 weights, loss-scaled optimizers: for GPUs
  mixed_bfloat16  bfloat16 compute, float32 weights: for GPUs and CPUs with AMX
"""

from __future__ import annotations

import contextlib

import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def check(precision: str) -> str:
  """The name, or a ValueError naming the allowed ones."""
  if precision not in PRECISIONS:
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
  return precision


@contextlib.contextmanager
def dtype_policy(precision: str):
  """Builds what is made inside under `precision`; the previous policy is restored after."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(check(precision))
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def compute_dtype(precision: str) -> str:
  """"float32", "float16" or "bfloat16": the dtype layers compute in under `precision`."""
  return keras.DTypePolicy(check(precision)).compute_dtype


def uses_loss_scaling(precision: str) -> bool:
  """float16 gradients underflow without loss scaling; bfloat16 has float32's exponent range."""
  return compute_dtype(precision) == "float16"


def slow_precision_note(precision: str, has_gpu: bool, cpu_flags: set[str]) -> str | None:
  """Why a mixed policy will be slower than float32 on this machine, or None (README:
  Performance has the measurements)."""
  if has_gpu or precision == "float32":
    return None
  if precision == "mixed_float16":
    return ("mixed_float16 without a GPU: TensorFlow has no fast float16 convolutions on CPUs, "
            "so this runs many times slower than --precision=float32 (it is meant for GPUs)")
  if "amx_bf16" not in cpu_flags:
    return ("mixed_bfloat16 on a CPU without AMX: we measured training 1.7x and inference 2x "
            "slower than --precision=float32 on such a CPU; prefer float32 here")
  return None
