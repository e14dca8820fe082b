"""cmri2spec_tf: Keras/TensorFlow implementation of CMRI2SPEC (Liu et al., ICASSP 2022).

Cine MRI sequence of the vocal tract -> mel spectrogram of the speech recorded with it.

  import cmri2spec_tf
  model = cmri2spec_tf.load("runs/demo")      # a training run's folder or an exported SavedModel
  spectrogram = model.predict("scans/S01/mri")
  waveform = model.to_audio(spectrogram)

Importing the package loads no TensorFlow and changes no environment variable; the commands
(`python -m cmri2spec_tf.train`, ...) set their defaults themselves (cli.py).
"""

__version__ = "0.1.0"
__all__ = ["load", "Translator", "__version__"]


def __getattr__(name):
  """`load` and `Translator` come from serving/inference.py, imported (with TensorFlow) on first
  use."""
  if name in ("load", "Translator"):
    from cmri2spec_tf.serving import inference

    return getattr(inference, name)
  raise AttributeError(f"module 'cmri2spec_tf' has no attribute {name!r}")
