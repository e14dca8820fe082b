"""The train entry point, killed with SIGKILL at a chosen moment of its checkpoint writing.

  python tests/scripts/crash_run.py POINT EPOCH [train flags ...]

POINT is where the process kills itself, in epoch EPOCH:
  in_epoch_write  half of the epoch checkpoint written under its temporary name
  before_state    the epoch checkpoint renamed into place, state.json not yet updated
  in_best_write   half of best.weights.h5 written under its temporary name
"""

import os
import signal
import sys

from absl import app

from cmri2spec_tf.base import atomic
from cmri2spec_tf.training import runs
from cmri2spec_tf import train

POINTS = ("in_epoch_write", "before_state", "in_best_write")


def die():
  sys.stdout.flush()
  os.kill(os.getpid(), signal.SIGKILL)


def install(point: str, epoch: int) -> None:
  save = runs.save_weights
  epoch_file = f"epoch-{epoch:04d}.weights.h5"
  seen = []

  def save_weights(model, path):
    name = os.path.basename(path)
    seen.append(name)
    best_of_epoch = name == "best.weights.h5" and epoch_file in seen
    if (point == "in_epoch_write" and name == epoch_file) or (
        point == "in_best_write" and best_of_epoch):
      with atomic.atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
        os.truncate(tmp, os.path.getsize(tmp) // 2)
        print(f"CRASH {point} epoch {epoch}", flush=True)
        die()
    save(model, path)
    if point == "before_state" and name == epoch_file:
      print(f"CRASH {point} epoch {epoch}", flush=True)
      die()

  runs.save_weights = save_weights


if __name__ == "__main__":
  point, epoch = sys.argv[1], int(sys.argv[2])
  assert point in POINTS, point
  install(point, epoch)
  train.define_flags()
  app.run(train.main, argv=[sys.argv[0], *sys.argv[3:]])
