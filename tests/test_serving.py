"""Export for TF Serving and the predict command, on the smoke run's model."""

import json
import os
import sys

import numpy as np
import pytest
import soundfile

from cmri2spec_tf.data import dicom
from cmri2spec_tf.data.spectrogram import SpecParams, mel_power, normalize_power
from tests.conftest import REPO
from tests.dicom_helpers import moving_square_frames, write_series
from tests import launcher

LOAD_AND_PREDICT = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
mri = np.load(sys.argv[2])
out = loaded.signatures["serving_default"](mri=tf.constant(mri))
both = loaded.signatures["mel_db"](mri=tf.constant(mri))
np.savez(sys.argv[3], spectrogram=out["spectrogram"].numpy(), mel_db=both["mel_db"].numpy(),
         spectrogram2=both["spectrogram"].numpy())
"""


def _run(*args, timeout=300):
  return launcher.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                      timeout=timeout)


@pytest.fixture(scope="module")
def exported(smoke_run, tmp_path_factory):
  run, _ = smoke_run
  export_dir = tmp_path_factory.mktemp("serving") / "cmri2spec" / "1"
  result = _run("-m", "cmri2spec_tf.export", f"--model_dir={run}", f"--export_dir={export_dir}")
  assert result.returncode == 0, result.stderr[-3000:]
  return run, export_dir


def _phantom_series(run):
  config = json.loads((run / "config.json").read_text())
  return os.path.join(config["data_dir"], "subjects", "S01", "mri")


def test_savedmodel_in_a_fresh_process_matches_keras(exported, tmp_path):
  from cmri2spec_tf.training.runs import load_translator

  run, export_dir = exported
  mri = dicom.read_cine(_phantom_series(run)).frames[None, ..., None]
  mri = np.concatenate([mri, mri[:, ::-1]])  # batch of 2
  np.save(tmp_path / "mri.npy", mri)
  result = _run("-c", LOAD_AND_PREDICT, str(export_dir), str(tmp_path / "mri.npy"),
                str(tmp_path / "out.npz"))
  assert result.returncode == 0, result.stderr[-3000:]
  served = np.load(tmp_path / "out.npz")
  translator, params, _ = load_translator(str(run), "best", precision="float32")
  expected = np.asarray(translator.predict_on_batch(mri))
  assert served["spectrogram"].shape == (2, 64, 64, 1)
  np.testing.assert_allclose(served["spectrogram"], expected, atol=1e-5)
  np.testing.assert_allclose(served["spectrogram2"], expected, atol=1e-5)
  np.testing.assert_allclose(served["mel_db"], -80 + 120 * expected, atol=1e-3)
  stored = SpecParams.from_json((export_dir / "assets" / "spec_params.json").read_text())
  assert stored == params


def test_saved_model_cli_lists_both_signatures(exported):
  _, export_dir = exported
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  result = launcher.run([cli, "show", "--dir", str(export_dir), "--all"], capture_output=True,
                        text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  for text in ("signature_def['serving_default']", "signature_def['mel_db']", "inputs['mri']",
               "outputs['spectrogram']", "outputs['mel_db']", "shape: (-1, 26, 128, 128, 1)",
               "shape: (-1, 64, 64, 1)", "dtype: DT_FLOAT"):
    assert text in result.stdout, text


def test_tf_serving_json_requests_fit_the_signature(exported):
  """The REST API's row ("instances") and columnar ("inputs") formats, built from a series."""
  import tensorflow as tf

  run, export_dir = exported
  mri = dicom.read_cine(_phantom_series(run)).frames[..., None]
  signature = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
  spec = signature.structured_input_signature[1]["mri"]
  for body in (json.dumps({"instances": [mri.tolist()]}),
               json.dumps({"inputs": {"mri": [mri.tolist()]}})):
    request = json.loads(body)
    rows = request["instances"] if "instances" in request else request["inputs"]["mri"]
    tensor = tf.constant(np.asarray(rows, np.float32))
    assert spec.is_compatible_with(tensor)
    assert signature(mri=tensor)["spectrogram"].shape == (1, 64, 64, 1)


def test_export_refuses_to_overwrite_a_version(exported):
  run, export_dir = exported
  before = sorted(os.listdir(export_dir))
  result = _run("-m", "cmri2spec_tf.export", f"--model_dir={run}", f"--export_dir={export_dir}")
  assert result.returncode == 1 and "exists" in result.stderr
  assert sorted(os.listdir(export_dir)) == before
  assert [n for n in os.listdir(export_dir.parent) if n.startswith(".")] == []


def test_predict_writes_png_npy_and_wav_that_match(exported, tmp_path):
  run, export_dir = exported
  result = _run("-m", "cmri2spec_tf.predict", f"--model={export_dir}",
                f"--mri={_phantom_series(run)}", f"--out={tmp_path}/S01")
  assert result.returncode == 0, result.stderr[-3000:]
  spectrogram = np.load(tmp_path / "S01.npy")
  assert spectrogram.shape == (64, 64) and spectrogram.dtype == np.float32
  assert (tmp_path / "S01.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  waveform, rate = soundfile.read(tmp_path / "S01.wav", dtype="float32")
  params = SpecParams()
  assert rate == 22050 and waveform.shape == (params.window_samples,)
  heard = normalize_power(mel_power(waveform[None], params), params)[0]
  assert np.abs(heard - spectrogram).mean() < 0.03
  assert np.corrcoef(heard.ravel(), spectrogram.ravel())[0, 1] > 0.8


def test_predict_batch_from_a_run_dir_with_progress(smoke_run, tmp_path):
  run, _ = smoke_run
  config = json.loads((run / "config.json").read_text())
  series = tmp_path / "series"
  series.mkdir()
  for subject in ("S01", "S03"):
    os.symlink(os.path.join(config["data_dir"], "subjects", subject, "mri"), series / subject)
  result = _run("-m", "cmri2spec_tf.predict", f"--model={run}", f"--mri={series}",
                f"--out={tmp_path}/out", "--batch")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "series: 2/2" in result.stderr and "\r" not in result.stderr  # a log: whole lines
  assert sorted(os.listdir(tmp_path / "out")) == [f"{s}.{e}" for s in ("S01", "S03")
                                                  for e in ("npy", "png", "wav")]


@pytest.mark.parametrize("case", ["no_dicom", "one_frame", "text_file"])
def test_predict_bad_input_exits_1_and_writes_nothing(exported, tmp_path, case):
  _, export_dir = exported
  if case == "no_dicom":
    mri = tmp_path / "empty_series"
    mri.mkdir()
    (mri / "notes.txt").write_text("no images here")
    expected = "not a DICOM file"
  elif case == "one_frame":
    mri = write_series(str(tmp_path / "one"), moving_square_frames(n=1))
    expected = "at least 2 frames"
  else:
    mri = tmp_path / "scan.txt"
    mri.write_text("this is not DICOM")
    expected = "not a DICOM file"
  out = tmp_path / "out"
  result = _run("-m", "cmri2spec_tf.predict", f"--model={export_dir}", f"--mri={mri}",
                f"--out={out}/x")
  assert result.returncode == 1
  assert str(mri) in result.stderr and expected in result.stderr and "nothing written" in result.stderr
  assert not out.exists()


KERAS_WITHOUT_PACKAGE = """
import sys
class Blocked:
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] == "cmri2spec_tf":
      raise ImportError("cmri2spec_tf is not installed here")
sys.meta_path.insert(0, Blocked())
import numpy as np, keras
try:
  import cmri2spec_tf
  raise SystemExit("the package was importable")
except ImportError:
  pass
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[3], np.asarray(model.predict_on_batch(np.load(sys.argv[2]))))
"""


def test_translator_keras_file_opens_without_the_package(smoke_run, tmp_path):
  """The run's translator.keras is a plain Keras model (no custom objects): a process that cannot
  import cmri2spec_tf loads it with keras.saving.load_model and translates as our loader does."""
  import cmri2spec_tf

  run, _ = smoke_run
  model = cmri2spec_tf.load(str(run), weights="last")
  mri = dicom.read_cine(_phantom_series(run)).frames[None, ..., None]
  np.save(tmp_path / "mri.npy", mri)
  result = launcher.run([sys.executable, "-c", KERAS_WITHOUT_PACKAGE,
                         str(run / "translator.keras"), str(tmp_path / "mri.npy"),
                         str(tmp_path / "out.npy")], cwd=tmp_path, capture_output=True,
                        text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  keras_output = np.load(tmp_path / "out.npy")
  assert keras_output.shape == (1, 64, 64, 1)
  np.testing.assert_allclose(keras_output[0, ..., 0], model.predict(mri[0, ..., 0]), atol=1e-5)


def test_python_api_loads_a_run_or_an_export_and_predicts_a_series(exported):
  """cmri2spec_tf.load(run or export).predict(series path or array), to_db, to_audio."""
  import cmri2spec_tf

  run, export_dir = exported
  series = _phantom_series(run)
  from_run, from_export = cmri2spec_tf.load(str(run)), cmri2spec_tf.load(str(export_dir))
  spectrogram = from_run.predict(series)
  assert spectrogram.shape == (64, 64) and 0 < spectrogram.min() and spectrogram.max() < 1
  np.testing.assert_allclose(from_export.predict(series), spectrogram, atol=1e-5)
  frames = dicom.read_cine(series).frames
  batch = from_run.predict(np.stack([frames, frames[::-1]]))
  assert batch.shape == (2, 64, 64)
  np.testing.assert_allclose(batch[0], spectrogram, atol=1e-5)
  np.testing.assert_allclose(from_run.to_db(spectrogram), -80 + 120 * spectrogram, atol=1e-4)
  waveform = from_run.to_audio(spectrogram)
  assert waveform.shape == (from_run.params.window_samples,) and np.abs(waveform).max() > 0
  with pytest.raises(ValueError, match="mri must be"):
    from_run.predict(np.zeros((26, 64, 64), np.float32))


@pytest.fixture()
def fake_tf_serving(exported):
  """TF Serving's REST predict API on 127.0.0.1, answering from the loaded SavedModel as TF
  Serving would: the row format's "instances" become the signature's input tensor. Serves for
  the duration of one test (a bounded number of requests), then stops."""
  import http.server
  import threading

  import tensorflow as tf

  _, export_dir = exported
  loaded = tf.saved_model.load(str(export_dir))
  seen = []

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
      request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
      seen.append(request)
      signature = loaded.signatures[request.get("signature_name", "serving_default")]
      outputs = signature(mri=tf.constant(np.asarray(request["instances"], np.float32)))
      if len(outputs) == 1:
        predictions = outputs["spectrogram"].numpy().tolist()
      else:
        predictions = [{k: v[i].numpy().tolist() for k, v in outputs.items()}
                       for i in range(len(request["instances"]))]
      body = json.dumps({"predictions": predictions}).encode()
      self.send_response(200)
      self.send_header("Content-Length", str(len(body)))
      self.end_headers()
      self.wfile.write(body)

    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                            daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{server.server_address[1]}/v1/models/cmri2spec", seen
  server.shutdown()
  server.server_close()
  thread.join(timeout=10)


@pytest.mark.parametrize("signature", ["serving_default", "mel_db"])
def test_serve_request_writes_what_predict_writes(exported, fake_tf_serving, tmp_path,
                                                  signature):
  import cmri2spec_tf
  from cmri2spec_tf.serving import savedmodel

  run, export_dir = exported
  url, seen = fake_tf_serving
  series = _phantom_series(run)
  body = savedmodel.rest_request(dicom.read_cine(series).frames[None], signature)
  assert json.loads(body)["signature_name"] == signature
  result = _run("-m", "cmri2spec_tf.serve_request", f"--url={url}", f"--mri={series}",
                f"--out={tmp_path}/S01", f"--signature={signature}",
                f"--spec_params={export_dir}/assets/spec_params.json")
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(seen) == 1 and np.asarray(seen[0]["instances"]).shape == (1, 26, 128, 128, 1)
  assert seen[0]["instances"] == json.loads(body)["instances"]  # the JSON the library builds
  expected = cmri2spec_tf.load(str(export_dir)).predict(series)
  np.testing.assert_allclose(np.load(tmp_path / "S01.npy"), expected, atol=1e-6)
  assert (tmp_path / "S01.png").read_bytes()[:4] == b"\x89PNG"
  assert soundfile.info(str(tmp_path / "S01.wav")).frames == 21000


def test_serve_request_without_a_server_exits_1_and_writes_nothing(exported, tmp_path):
  run, _ = exported
  result = _run("-m", "cmri2spec_tf.serve_request", "--url=http://127.0.0.1:9/v1/models/x",
                f"--mri={_phantom_series(run)}", f"--out={tmp_path}/out/S01")
  assert result.returncode == 1, result.stderr[-2000:]
  assert "http://127.0.0.1:9/v1/models/x:predict" in result.stderr
  assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
