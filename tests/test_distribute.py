"""tf.distribute: 2 replicas on logical CPUs update exactly as one device on the same global batch,
and two workers started as local processes with TF_CONFIG finish with equal weights."""

import json
import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from cmri2spec_tf.training import distribute

from .conftest import NO_PICTURES, REPO, smoke_command
from tests import launcher

SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")


def test_mirrored_two_replicas_equal_one_device():
  result = launcher.run([sys.executable, f"{SCRIPTS}/mirrored_vs_single.py", "float32", "2"],
                        capture_output=True, text=True, timeout=600, cwd=REPO)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["replicas"] == 2 and report["iterations"] == 2
  assert report["same_start"] == 0.0
  assert report["max_update"] > 1e-4  # training moved the weights ...
  assert report["max_abs_diff"] < 1e-5, report  # ... and both runs moved them alike
  # Keras clips before the replicas' gradients are summed: each share at 100 / 2
  assert report["fast_clipnorm"] == {"single": 100.0, "mirrored": 50.0}


def test_batch_size_must_split_evenly_over_replicas():
  class TwoReplicas:
    num_replicas_in_sync = 2

  distribute.check_batch_size(TwoReplicas(), 4)
  with pytest.raises(ValueError, match="not a multiple of the 2 replicas"):
    distribute.check_batch_size(TwoReplicas(), 3)


def test_multi_worker_needs_tf_config(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="TF_CONFIG"):
    distribute.make_strategy("multi_worker")


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _weights(path):
  arrays = {}

  def keep(name, item):  # visititems stops at the first non-None return
    if isinstance(item, h5py.Dataset):
      arrays[name] = item[()]

  with h5py.File(path, "r") as f:
    f.visititems(keep)
  return arrays


def test_two_local_workers_finish_with_equal_weights(smoke_run, tmp_path):
  smoke_dir = smoke_run[0].parent  # reuse the smoke run's phantom and cache (read only)
  cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
  command = smoke_command(tmp_path, f"--data_dir={smoke_dir}/data",
                          f"--cache_dir={smoke_dir}/cache", "--strategy=multi_worker", NO_PICTURES)
  workers = []
  for index in range(2):
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": index}}))
    workers.append(subprocess.Popen(command, env=env, cwd=REPO, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
  outputs = [w.communicate(timeout=600)[0] for w in workers]
  for worker, output in zip(workers, outputs):
    assert worker.returncode == 0, output[-3000:]
    assert "2 replicas, 1 pairs each per step" in output, output[-3000:]
    assert "held-out L1" in output, output[-3000:]
  chief_dir, other_dir = tmp_path / "run", tmp_path / "run" / "workers" / "worker_1"
  for folder in (chief_dir, other_dir):
    assert json.loads((folder / "checkpoints" / "state.json").read_text())["epoch"] == 2
  chief = _weights(chief_dir / "checkpoints" / "epoch-0002.weights.h5")
  other = _weights(other_dir / "checkpoints" / "epoch-0002.weights.h5")
  start = _weights(chief_dir / "checkpoints" / "epoch-0001.weights.h5")
  assert chief.keys() == other.keys() and len(chief) > 20
  assert all(np.array_equal(chief[k], other[k]) for k in chief)
  assert any(not np.array_equal(chief[k], start[k]) for k in chief)  # epoch 2 did train
