"""Facts about the machine a command runs on: CPU model and features, GPUs, a one-line summary,
and the device report every command prints first (`device_report`)."""

from __future__ import annotations

import functools
import os
import platform
import re
import sys
import tempfile

NVIDIA_DRIVER_VERSION = "/proc/driver/nvidia/version"
# TensorFlow's CUDA build probes the driver once per process; without one it logs this at error
# level. Harmless on a CPU-only machine: the device report says "CPU only" instead.
CUDA_PROBE_NOISE = "failed call to cuInit"
# While TensorFlow loads, its C++ code logs before absl's logging is initialized, so
# TF_CPP_MIN_LOG_LEVEL does not reach these lines: "WARNING: All log messages before
# absl::InitializeLog() ...", then INFO lines (oneDNN on, "Could not find cuda drivers", the CPU
# features, whose second line starts "To enable the following instructions"). On a machine
# without an NVIDIA driver none of them concerns the user; the device report says it in words.
TF_LOG_LINE = re.compile(r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.-]+:\d+\] ")
LOAD_NOISE = ("WARNING: All log messages before absl::InitializeLog() is called",
              "To enable the following instructions:")


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


def nvidia_driver() -> str | None:
  """The NVIDIA kernel driver's version line, or None on a machine without one."""
  try:
    with open(NVIDIA_DRIVER_VERSION) as f:
      return f.readline().strip() or "unknown version"
  except OSError:
    return None


@functools.lru_cache(maxsize=1)
def probe_gpus() -> tuple[str, ...]:
  """GPU names, probing CUDA once per process; call it before anything else loads Keras or
  TensorFlow's devices. Without an NVIDIA driver the probe's stderr (TensorFlow's loading
  included) is captured and passed on without its expected lines (`cpu_only_noise`); with a
  driver nothing is captured or hidden."""
  if nvidia_driver() is not None:
    return tuple(gpu_names())
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as capture:
    os.dup2(capture.fileno(), 2)
    try:
      return tuple(gpu_names())
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      lines = capture.read().decode(errors="replace").splitlines()
      sys.stderr.write("".join(line + "\n" for line in lines if not cpu_only_noise(line)))
      sys.stderr.flush()


def cpu_only_noise(line: str) -> bool:
  """Whether a line TensorFlow printed while loading on a machine without an NVIDIA driver is one
  of its expected INFO/WARNING lines or the driver probe's error line (shown nowhere else)."""
  return (CUDA_PROBE_NOISE in line or bool(TF_LOG_LINE.match(line))
          or line.startswith(LOAD_NOISE))


def cpu_only_reason() -> str:
  """Why TensorFlow sees no GPU here, in words."""
  import tensorflow as tf

  if nvidia_driver() is None:
    return "no NVIDIA driver on this machine"
  if not tf.test.is_built_with_cuda():
    return f"an NVIDIA driver is present, but TensorFlow {tf.__version__} was built without CUDA"
  return ("an NVIDIA driver is present, but TensorFlow cannot load the CUDA libraries (its "
          "warnings above name them); install them with `pip install 'cmri2spec_tf[gpu]'` or "
          "`make install-gpu`")


def device_report(precision: str | None = None, strategy: str | None = None) -> str:
  """One line: the devices this process will compute on, and the precision when given."""
  gpus = probe_gpus()
  if not gpus:
    devices = f"CPU only ({cpu_only_reason()}): {cpu_name()}, {usable_cores()} cores"
  elif len(gpus) == 1 or strategy in ("mirrored", "multi_worker"):
    devices = ", ".join(f"GPU:{i} {name}" for i, name in enumerate(gpus))
  else:
    devices = (f"GPU:0 {gpus[0]} (1 of {len(gpus)} GPUs; --strategy=mirrored uses all of "
               "them)")
  return f"devices: {devices}" + (f"; precision: {precision}" if precision else "")
