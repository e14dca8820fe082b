"""A trained run's translator as a SavedModel for TF Serving (the `export` command's work).

What is exported: the translator only (Fig. 2's inference path: encoder -> s and mu, w = mu,
decoder; or the Lip2AudSpec network), in float32 whatever the training precision, with the
weights of the best epoch (chosen on the run's selection subjects, else on its held-out ones) or
the last. No discriminator, no pairs, no sampling.

Signatures (`saved_model_cli show --dir E/1 --all` lists them):
  serving_default  input  mri          float32 [batch, 26, 128, 128, 1], values in [0, 1]
                   output spectrogram  float32 [batch, 64, 64, 1], normalized mel in [0, 1],
                                       mel bins bottom-up (row 0 = lowest frequency) x time
  mel_db           input  mri          as above
                   outputs spectrogram as above, and
                           mel_db      float32 [batch, 64, 64, 1], the same in dB (ref 1):
                                       db_min + spectrogram * (db_max - db_min)
  waveform         (only with `export --vocoder=DIR`)
                   input  mri          as above
                   outputs spectrogram as above, and
                           waveform    float32 [batch, window_samples], the spectrogram through
                                       the neural vocoder (speech/vocoders.py), mono at sample_rate
                                       (22,050 Hz): 21,000 samples, the window the MRI spans
The spectrogram parameters (sample rate, FFT, hop, mel bins, dB range) are stored as the asset
`assets/spec_params.json`, so clients can turn the output back into sound without our code.

The export is written to a temporary folder beside export_dir and renamed into place; an
existing export_dir is never overwritten (TF Serving versions are immutable: use a new number).

The REST client (`rest_request`, `post_predict`, `rest_predictions`; the `serve_request`
command) speaks TF Serving's predict API in the row format: {"signature_name": S, "instances":
[MRI, ...]} with MRI the [26, 128, 128, 1] nested lists; the answer's "predictions" are the
spectrograms (serving_default) or {"spectrogram", "mel_db"} objects (mel_db).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import numpy as np
import tensorflow as tf

from cmri2spec_tf.base import atomic
from cmri2spec_tf.training import runs
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.models.translator import MRI_SHAPE

SPEC_PARAMS_ASSET = "spec_params.json"
SERVING_INPUT = "mri"
SIGNATURES = ("serving_default", "mel_db", "waveform")


def serving_module(translator, params: SpecParams, params_path: str, vocoder=None) -> tf.Module:
  """A tf.Module with the signatures (`waveform` needs the vocoder's Keras model) and the
  spectrogram parameters as an asset."""
  mri_spec = tf.TensorSpec([None, *MRI_SHAPE], tf.float32, name=SERVING_INPUT)

  class Translator(tf.Module):
    def __init__(self):
      super().__init__(name="cmri2spec")
      self.translator = translator
      self.spec_params = tf.saved_model.Asset(params_path)
      if vocoder is not None:  # saved (and traced) only with a vocoder
        self.vocoder = vocoder
        self.spectrogram_and_waveform = tf.function(self._waveform, input_signature=[mri_spec])

    @tf.function(input_signature=[mri_spec])
    def spectrogram(self, mri):
      return {"spectrogram": self.translator(mri, training=False)}

    @tf.function(input_signature=[mri_spec])
    def spectrogram_and_db(self, mri):
      spectrogram = self.translator(mri, training=False)
      mel_db = params.db_min + spectrogram * (params.db_max - params.db_min)
      return {"spectrogram": spectrogram, "mel_db": mel_db}

    def _waveform(self, mri):
      spectrogram = self.translator(mri, training=False)
      frames = tf.transpose(spectrogram[..., 0], [0, 2, 1])  # [batch, time, mel]
      waveform = self.vocoder(frames, training=False)[:, :params.window_samples]
      waveform = tf.pad(waveform, [[0, 0], [0, params.window_samples - tf.shape(waveform)[1]]])
      return {"spectrogram": spectrogram, "waveform": waveform}

  return Translator()


def save(translator, params: SpecParams, export_dir: str, vocoder=None) -> str:
  """Writes translator + params (+ the vocoder's Keras model: the `waveform` signature) as a
  SavedModel version folder (which must not exist yet)."""
  export_dir = os.path.abspath(export_dir)
  if os.path.exists(export_dir):
    raise FileExistsError(f"{export_dir} exists: TF Serving versions are immutable, export to a "
                          "new version number")
  parent = os.path.dirname(export_dir)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.", dir=parent)
  try:
    params_path = os.path.join(staging, SPEC_PARAMS_ASSET)
    with open(params_path, "w") as f:
      f.write(params.to_json())
    module = serving_module(translator, params, params_path, vocoder)
    saved = os.path.join(staging, "saved_model")
    signatures = {"serving_default": module.spectrogram, "mel_db": module.spectrogram_and_db}
    if vocoder is not None:
      signatures["waveform"] = module.spectrogram_and_waveform
    tf.saved_model.save(module, saved, signatures=signatures)
    os.rename(saved, export_dir)
  except Exception as e:  # a full disk: one line naming the version folder, nothing left
    atomic.raise_if_disk_full(e, export_dir)
    raise
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return export_dir


def export(model_dir: str, export_dir: str, weights: str = "best",
           vocoder: str | None = None) -> str:
  """A run's translator in float32 (and the vocoder folder's generator: the `waveform`
  signature) -> export_dir (which must not exist yet); returns its path."""
  from cmri2spec_tf.speech import vocoders

  translator, params, _ = runs.load_translator(model_dir, weights, precision="float32")
  generator = vocoders.from_flag(vocoder, params).model if vocoder else None
  return save(translator, params, export_dir, generator)


def is_export(path: str) -> bool:
  return os.path.exists(os.path.join(path, "saved_model.pb"))


def export_params(path: str) -> SpecParams:
  """The spectrogram parameters an export carries as its asset."""
  with open(os.path.join(path, "assets", SPEC_PARAMS_ASSET)) as f:
    return SpecParams.from_json(f.read())


def load_export(path: str):
  """(function mri [B, 26, 128, 128, 1] -> spectrograms [B, 64, 64], SpecParams) of an export."""
  serving = tf.saved_model.load(path).signatures["serving_default"]
  return (lambda mri: serving(**{SERVING_INPUT: tf.constant(mri)})["spectrogram"].numpy()[..., 0],
          export_params(path))


# ------------------------------------------------------------------ TF Serving's REST predict API
def rest_request(mri: np.ndarray, signature: str = "serving_default") -> bytes:
  """The JSON body of a predict request for MRI [B, 26, 128, 128] or [B, 26, 128, 128, 1]."""
  mri = np.asarray(mri, np.float32)
  if mri.ndim == 4:
    mri = mri[..., None]
  if mri.shape[1:] != MRI_SHAPE:
    raise ValueError(f"mri must be [B, 26, 128, 128(, 1)], got {mri.shape}")
  if signature not in SIGNATURES:
    raise ValueError(f"signature must be one of {SIGNATURES}, got {signature!r}")
  return json.dumps({"signature_name": signature, "instances": mri.tolist()}).encode()


def rest_waveforms(body: bytes) -> np.ndarray:
  """Waveforms [B, samples] from a predict response of the `waveform` signature."""
  answer = json.loads(body)
  if "predictions" not in answer:
    raise ValueError(f"TF Serving answered without predictions: {answer.get('error', answer)}")
  return np.asarray([p["waveform"] for p in answer["predictions"]], np.float32)


def rest_predictions(body: bytes) -> np.ndarray:
  """Spectrograms [B, 64, 64] from a predict response of either signature."""
  answer = json.loads(body)
  if "predictions" not in answer:
    raise ValueError(f"TF Serving answered without predictions: {answer.get('error', answer)}")
  predictions = answer["predictions"]
  if predictions and isinstance(predictions[0], dict):
    predictions = [p["spectrogram"] for p in predictions]
  return np.asarray(predictions, np.float32).reshape(len(predictions), 64, 64)


def post_predict(url: str, body: bytes, timeout: float = 120.0) -> bytes:
  """POSTs a predict request to URL (http://HOST:8501/v1/models/NAME[/versions/N]) and
  returns the answer; OSError naming the URL when the server cannot be reached or refuses."""
  endpoint = url.rstrip("/") + ":predict"
  request = urllib.request.Request(endpoint, data=body, method="POST",
                                   headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as answer:
      return answer.read()
  except urllib.error.HTTPError as e:
    raise OSError(f"{endpoint}: HTTP {e.code}: {e.read()[:500].decode(errors='replace')}") from e
  except (urllib.error.URLError, TimeoutError) as e:
    raise OSError(f"{endpoint}: {getattr(e, 'reason', e)}") from e
