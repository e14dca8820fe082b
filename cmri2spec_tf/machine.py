"""Facts about the machine a command runs on: CPU model and features, GPUs, a one-line summary."""

from __future__ import annotations

import os
import platform


def cpuinfo(field: str) -> str:
  """The first value of `field` in /proc/cpuinfo ("model name", "flags"); "" where there is none."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith(field))
  except (OSError, StopIteration):
    return ""


def cpu_flags() -> set[str]:
  """The CPU's feature flags (empty where /proc/cpuinfo has none)."""
  return set(cpuinfo("flags").split())


def cpu_name() -> str:
  return cpuinfo("model name") or platform.processor() or platform.machine()


def usable_cores() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_names() -> list[str]:
  """The GPUs TensorFlow can use, by their device name ([] on a CPU-only machine)."""
  import tensorflow as tf

  return [tf.config.experimental.get_device_details(g).get("device_name", g.name)
          for g in tf.config.list_physical_devices("GPU")]


def has_gpu() -> bool:
  import tensorflow as tf

  return bool(tf.config.list_physical_devices("GPU"))


def description() -> str:
  """CPU model, cores, GPUs and TensorFlow version in one line (the bench's `machine`)."""
  import tensorflow as tf

  gpus = ", ".join(gpu_names()) or "no GPU"
  return f"{cpu_name()}; {usable_cores()} cores; {gpus}; TensorFlow {tf.__version__}"
