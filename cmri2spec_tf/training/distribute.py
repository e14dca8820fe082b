"""tf.distribute strategies by name, as the Model Garden's `distribute_utils` does.

  default       one device (the first GPU if there is one, else the CPU)
  mirrored      MirroredStrategy over every local GPU (or every logical CPU when there is no GPU)
  multi_worker  MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable

`--batch_size` is the global batch (pairs per step over all replicas); each replica gets an equal
share. Gradients are summed over replicas, so the trainer divides its losses by the replica count
(trainer.py). In a multi-worker run, the chief (worker 0, or the `chief` task) writes model_dir;
every other worker writes its own copy under model_dir/workers/<task> and resumes from the
chief's checkpoints, so model_dir must be on a filesystem every worker sees.
"""

from __future__ import annotations

import os

import tensorflow as tf

from cmri2spec_tf.training.config import STRATEGIES
from cmri2spec_tf.base.errors import ConfigError


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The strategy `name` names. Create it before any other TensorFlow work in the process."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker":
    if not os.environ.get("TF_CONFIG"):
      raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                       "(cluster and task), see the README's 'Several GPUs or machines'")
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ConfigError(f"--strategy={name}: must be one of {', '.join(STRATEGIES)}")


def check_batch_size(strategy: tf.distribute.Strategy, batch_size: int) -> None:
  """Every replica must get the same number of pairs per step."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ConfigError(f"--batch_size={batch_size} (pairs per step, all replicas together) is not "
                     f"a multiple of the {replicas} replicas")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's model_dir (the strategy's own answer: always outside
  a cluster; the `chief` task, or worker 0 when there is none, in a multi-worker run)."""
  return strategy.extended.should_checkpoint


def write_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
  """Where this process writes: model_dir for the chief, a folder of its own for the others."""
  if is_chief(strategy):
    return model_dir
  resolver = strategy.cluster_resolver
  return os.path.join(model_dir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def replica_position() -> tuple[tf.Tensor, int]:
  """(index of this replica among all, number of replicas), inside or outside strategy.run."""
  context = tf.distribute.get_replica_context()
  if context is None:  # cross-replica context
    return tf.constant(0), tf.distribute.get_strategy().num_replicas_in_sync
  return tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync


def step_logs(trackers) -> dict:
  """A train/test step's return value: each tracker's result.

  Under MultiWorkerMirroredStrategy, Keras 3.15 reduces step results with
  `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars; there each result gets a
  leading axis of 1, which that reduction removes again (the trackers are synchronized, so the
  mean over replicas is the value).
  """
  logs = {t.name: t.result() for t in trackers}
  if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
    logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
  return logs
