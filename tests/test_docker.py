"""The Docker files: hadolint-clean, and in step with the lock file and the install CI runs."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

DOCKERFILES = ("docker/Dockerfile", "docker/Dockerfile.serving")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes(name):
  hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
  result = subprocess.run([hadolint, "--no-color", name], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stdout + result.stderr


def test_training_image_matches_the_lock_and_the_ci_install():
  dockerfile = open(os.path.join(REPO, DOCKERFILES[0])).read()
  lock = open(os.path.join(REPO, "requirements.lock")).read()
  pinned = re.search(r"^tensorflow==([\d.]+)$", lock, re.M).group(1)
  assert re.search(rf"^FROM tensorflow/tensorflow:{re.escape(pinned)}-gpu$", dockerfile, re.M)
  makefile = open(os.path.join(REPO, "Makefile")).read()
  assert "pip install -q -r requirements.lock" in makefile  # what CI runs ...
  assert "pip install --no-cache-dir -r requirements.lock" in dockerfile  # ... and the image
  assert 'ENTRYPOINT ["python", "-m", "cmri2spec_tf.train"]' in dockerfile
  assert re.search(r"^USER [1-9]\d*", dockerfile, re.M)  # not root


def test_serving_image_serves_the_model_name_of_the_rest_path():
  dockerfile = open(os.path.join(REPO, DOCKERFILES[1])).read()
  assert re.search(r"^FROM tensorflow/serving:\d+\.\d+\.\d+$", dockerfile, re.M)
  assert "ENV MODEL_NAME=cmri2spec" in dockerfile
  assert "/v1/models/cmri2spec:predict" in open(os.path.join(REPO, "README.md")).read()
