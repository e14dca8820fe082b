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


def test_training_image_matches_the_lock_and_installs_the_runtime_only():
  dockerfile = open(os.path.join(REPO, DOCKERFILES[0])).read()
  runtime = open(os.path.join(REPO, "requirements-runtime.lock")).read()
  pinned = re.search(r"^tensorflow==([\d.]+)$", runtime, re.M).group(1)
  assert re.search(rf"^FROM tensorflow/tensorflow:{re.escape(pinned)}-gpu$", dockerfile, re.M)
  assert "pip install --no-cache-dir -r requirements-runtime.lock" in dockerfile
  assert "requirements.lock" not in dockerfile  # the test tools stay out of the image
  for tool in ("pytest", "hypothesis", "hadolint"):
    assert not re.search(rf"^{tool}", runtime, re.M | re.I), tool
  full = open(os.path.join(REPO, "requirements.lock")).read()
  assert "-r requirements-runtime.lock" in full  # one source of the runtime pins
  assert 'ENTRYPOINT ["cmri2spec-train"]' in dockerfile
  assert "TF_CPP_MIN_LOG_LEVEL" not in dockerfile  # GPU-library warnings stay visible
  assert re.search(r"^USER [1-9]\d*", dockerfile, re.M)  # not root


def test_serving_image_runs_as_non_root_with_a_healthcheck_and_a_mounted_export():
  dockerfile = open(os.path.join(REPO, DOCKERFILES[1])).read()
  version = re.search(r"^FROM tensorflow/serving:(\d+)\.(\d+)\.\d+$", dockerfile, re.M)
  assert version and (int(version[1]), int(version[2])) >= (2, 20)
  assert "ENV MODEL_NAME=cmri2spec" in dockerfile
  assert re.search(r"^USER [1-9]\d*", dockerfile, re.M)
  assert re.search(r"^HEALTHCHECK .*\n\s+CMD .*127\.0\.0\.1/8501.*GET /v1/models/cmri2spec",
                   dockerfile, re.M)
  assert 'VOLUME ["/models/cmri2spec"]' in dockerfile and "COPY" not in dockerfile
  assert "/v1/models/cmri2spec:predict" in open(os.path.join(REPO, "docs", "serving.md")).read()


def test_compose_runs_as_the_host_user_and_mounts_the_export():
  compose = open(os.path.join(REPO, "docker", "compose.yaml")).read()
  assert compose.count('user: "${HOST_UID:-1000}:${HOST_GID:-1000}"') == 3
  assert "../serving/cmri2spec:/models/cmri2spec:ro" in compose
  assert "mkdir -p data runs serving/cmri2spec" in compose  # the documented step
  readme = open(os.path.join(REPO, "docs", "serving.md")).read()
  assert "mkdir -p data runs serving/cmri2spec" in readme and "HOST_UID" in readme


def test_dockerignore_keeps_the_build_context_small():
  ignored = open(os.path.join(REPO, ".dockerignore")).read().split()
  for name in (".git", ".venv", "data", "runs", "tests"):
    assert name in ignored
