"""Shared fixtures: a small phantom dataset made once per test session."""

import os

import cmri2spec_tf  # noqa: E402,F401  (sets TF environment defaults before TensorFlow loads)

import pytest  # noqa: E402

from cmri2spec_tf.data import phantom  # noqa: E402

PHANTOM_AGEESE, PHANTOM_ASOUK = 3, 2


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
  """5 phantom subjects (3 'ageese', 2 'asouk'), seed 0. Read-only for tests: copy to modify."""
  out = tmp_path_factory.mktemp("phantom")
  phantom.generate(str(out), PHANTOM_AGEESE, PHANTOM_ASOUK, seed=0)
  return str(out)
