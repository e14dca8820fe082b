"""Exports a trained run's translator as a SavedModel for TF Serving.

  python -m cmri2spec_tf.export --model_dir=runs/demo --export_dir=serving/cmri2spec/1

What is exported: the translator only (Fig. 2's inference path: encoder -> s and mu, w = mu,
decoder; or the Lip2AudSpec network), in float32 whatever the training precision, with the
weights of the best held-out epoch (or --weights=last). No discriminator, no pairs, no sampling.

Signatures (`saved_model_cli show --dir E/1 --all` lists them):
  serving_default  input  mri          float32 [batch, 26, 128, 128, 1], values in [0, 1]
                   output spectrogram  float32 [batch, 64, 64, 1], normalized mel in [0, 1],
                                       mel bins bottom-up (row 0 = lowest frequency) x time
  mel_db           input  mri          as above
                   outputs spectrogram as above, and
                           mel_db      float32 [batch, 64, 64, 1], the same in dB (ref 1):
                                       db_min + spectrogram * (db_max - db_min)
The spectrogram parameters (sample rate, FFT, hop, mel bins, dB range) are stored as the asset
`assets/spec_params.json`, so clients can turn the output back into sound without our code.

The export is written to a temporary folder beside export_dir and renamed into place; an
existing export_dir is never overwritten (TF Serving versions are immutable: use a new number).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from absl import app, flags, logging

SPEC_PARAMS_ASSET = "spec_params.json"
SERVING_INPUT = "mri"


def load_translator(model_dir: str, weights: str = "best"):
  """(float32 inference model with the run's weights, SpecParams, config) of a training run."""
  import keras

  from cmri2spec_tf import checkpoints, evaluation, experiment
  from cmri2spec_tf.data.spectrogram import SpecParams

  config = experiment.load_config(model_dir)
  params_path = os.path.join(model_dir, SPEC_PARAMS_ASSET)
  try:
    with open(params_path) as f:
      params = SpecParams.from_json(f.read())
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise FileNotFoundError(f"{params_path}: missing or unreadable ({e}); is {model_dir} a "
                            "training run's model_dir?") from e
  weights_path, _ = evaluation.weights_file(model_dir, weights)
  keras.config.set_dtype_policy(config.precision)
  trained = experiment.build_model(config)
  checkpoints.load_weights(trained, weights_path)
  keras.config.set_dtype_policy("float32")
  translator = experiment.build_model(config).inference_model()
  translator.set_weights(trained.inference_model().get_weights())
  return translator, params, config


def serving_module(translator, params, params_path: str):
  """A tf.Module with the two signatures and the spectrogram parameters as an asset."""
  import tensorflow as tf

  mri_spec = tf.TensorSpec([None, 26, 128, 128, 1], tf.float32, name=SERVING_INPUT)

  class Translator(tf.Module):
    def __init__(self):
      super().__init__(name="cmri2spec")
      self.translator = translator
      self.spec_params = tf.saved_model.Asset(params_path)

    @tf.function(input_signature=[mri_spec])
    def spectrogram(self, mri):
      return {"spectrogram": self.translator(mri, training=False)}

    @tf.function(input_signature=[mri_spec])
    def spectrogram_and_db(self, mri):
      spectrogram = self.translator(mri, training=False)
      mel_db = params.db_min + spectrogram * (params.db_max - params.db_min)
      return {"spectrogram": spectrogram, "mel_db": mel_db}

  return Translator()


def export(model_dir: str, export_dir: str, weights: str = "best") -> str:
  """Writes the SavedModel to export_dir (which must not exist yet); returns its path."""
  import tensorflow as tf

  export_dir = os.path.abspath(export_dir)
  if os.path.exists(export_dir):
    raise FileExistsError(f"{export_dir} exists: TF Serving versions are immutable, export to a "
                          "new version number")
  translator, params, _ = load_translator(model_dir, weights)
  parent = os.path.dirname(export_dir)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.", dir=parent)
  try:
    params_path = os.path.join(staging, SPEC_PARAMS_ASSET)
    with open(params_path, "w") as f:
      f.write(params.to_json())
    module = serving_module(translator, params, params_path)
    saved = os.path.join(staging, "saved_model")
    tf.saved_model.save(module, saved, signatures={
        "serving_default": module.spectrogram, "mel_db": module.spectrogram_and_db})
    os.rename(saved, export_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return export_dir


def define_flags():
  flags.DEFINE_string("model_dir", None, "A training run's model_dir.", required=True)
  flags.DEFINE_string("export_dir", None, "Version folder to create, e.g. serving/cmri2spec/1.",
                      required=True)
  flags.DEFINE_enum("weights", "best", ["best", "last"], "Best held-out epoch or the last one.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # TF's SavedModel INFO lines
  FLAGS = flags.FLAGS
  try:
    path = export(FLAGS.model_dir, FLAGS.export_dir, FLAGS.weights)
  except OSError as e:  # an existing version, missing or unreadable files of the run
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(f"exported the translator of {FLAGS.model_dir} to {path}\n"
        f"  serving_default: mri float32 [batch, 26, 128, 128, 1] -> spectrogram [batch, 64, 64, 1]\n"
        f"  mel_db:          mri -> spectrogram, mel_db (dB)\n"
        f"  asset:           assets/{SPEC_PARAMS_ASSET}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
