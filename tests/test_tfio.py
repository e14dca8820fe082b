"""The tensorflow-io decoders (the optional .[tfio] extra) give the core decoders' arrays.

They need their own environment (TF 2.17.1: tensorflow-io's ops do not load with TF >= 2.18), so
in the project's environment these tests are skipped, with the reason; `make test-tfio` (a CI
step of its own) builds that environment and sets CMRI2SPEC_REQUIRE_TFIO=1, under which a
tensorflow-io that does not load is a failure, not a skip.
"""

import os

import numpy as np
import pytest
import soundfile

from cmri2spec_tf.data import audio, dicom, tfio_decoders
from tests.dicom_helpers import moving_square_frames, write_enhanced_multiframe, write_series

REASON = tfio_decoders.unavailable_reason()
REQUIRED = os.environ.get("CMRI2SPEC_REQUIRE_TFIO") == "1"
pytestmark = pytest.mark.skipif(REASON is not None and not REQUIRED,
                                reason=f"the .[tfio] extra is not installed here ({REASON}); "
                                       "run `make test-tfio`")


def test_tensorflow_io_loads_in_this_environment():
  assert REASON is None


def test_dicom_series_folder_decodes_identically(phantom_dir):
  series = os.path.join(phantom_dir, "subjects", "S01", "mri")
  core = dicom.read_cine(series)
  tfio = dicom.read_cine(series, decoder="tfio")
  assert tfio.info == core.info
  np.testing.assert_array_equal(tfio.frames, core.frames)


def test_dicom_odd_series_decode_identically(tmp_path):
  frames = moving_square_frames(n=12, rows=96, cols=80)
  shuffled = write_series(str(tmp_path / "shuffled"), frames, order_tag="InstanceNumber",
                          names=[f"f{i:03d}" for i in np.random.default_rng(0).permutation(12)])
  enhanced = str(tmp_path / "enhanced.dcm")
  write_enhanced_multiframe(enhanced, frames[::-1], trigger_ms=np.arange(12)[::-1] * 40.0,
                            rescale=[(2.0, -100.0)] * 12)
  for path in (shuffled, enhanced):
    np.testing.assert_array_equal(dicom.read_cine(path, decoder="tfio").frames,
                                  dicom.read_cine(path).frames)


@pytest.mark.parametrize("rate,channels,subtype", [(22050, 1, "PCM_16"), (44100, 2, "PCM_16"),
                                                   (16000, 1, "PCM_24")])
def test_wav_decodes_identically(tmp_path, rate, channels, subtype):
  t = np.arange(int(1.1 * rate)) / rate
  tone = 0.4 * np.sin(2 * np.pi * 220 * t)
  data = np.stack([tone * (c + 1) / channels for c in range(channels)], axis=1)
  path = str(tmp_path / "a.wav")
  soundfile.write(path, data, rate, subtype=subtype)
  core, tfio = audio.read_audio(path), audio.read_audio(path, decoder="tfio")
  assert tfio.info == core.info
  np.testing.assert_allclose(tfio.waveform, core.waveform, atol=1e-6)


def test_phantom_wav_decodes_identically(phantom_dir):
  path = os.path.join(phantom_dir, "subjects", "S02", "audio.wav")
  np.testing.assert_array_equal(audio.read_audio(path, decoder="tfio").waveform,
                                audio.read_audio(path).waveform)


EXPORT_WITH_THE_PROJECT_TF = """
import sys, numpy as np, tensorflow as tf
from cmri2spec_tf.serving import savedmodel
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.training.trainer import build_trainer
tf.keras.utils.set_random_seed(0)
translator = build_trainer(gan=False).inference_model()
savedmodel.save(translator, SpecParams(), sys.argv[1])
mri = np.random.default_rng(0).random((2, 26, 128, 128, 1), np.float32)
np.savez(sys.argv[2], mri=mri, spectrogram=translator.predict_on_batch(mri), tf=tf.__version__)
"""


def test_an_older_tensorflow_serves_our_export(tmp_path):
  """The serving image's TF Serving (2.20) must run what the project's TensorFlow (2.21) exports.
  This environment's TensorFlow is older still (2.17.1): a SavedModel written with the project's
  environment (.venv, which `make test` builds first) loads and runs here, signatures and all,
  giving the same spectrograms; so no op or attribute of the export is newer than 2.17."""
  import subprocess
  import sys

  import tensorflow as tf

  project_python = os.path.join(os.path.dirname(os.path.dirname(__file__)), ".venv", "bin",
                                "python")
  assert os.path.exists(project_python), "build the project's environment first (make install)"
  result = subprocess.run([project_python, "-c", EXPORT_WITH_THE_PROJECT_TF,
                           str(tmp_path / "1"), str(tmp_path / "reference.npz")],
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  reference = np.load(tmp_path / "reference.npz")
  assert str(reference["tf"]) > tf.__version__  # written by a newer TensorFlow than this one
  loaded = tf.saved_model.load(str(tmp_path / "1"))
  served = loaded.signatures["serving_default"](mri=tf.constant(reference["mri"]))
  np.testing.assert_allclose(served["spectrogram"].numpy(), reference["spectrogram"], atol=1e-5)
  both = loaded.signatures["mel_db"](mri=tf.constant(reference["mri"]))
  np.testing.assert_allclose(both["mel_db"].numpy(), -80 + 120 * reference["spectrogram"],
                             atol=1e-3)
