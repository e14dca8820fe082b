"""Decoding DICOM pixels and WAV samples with tensorflow-io ops: the optional `.[tfio]` extra.

tensorflow-io 0.37.1 is abandoned and its C++ ops load only with TensorFlow <= 2.17
(docs/method.md, "Optional tensorflow-io decoders"), so the extra is its own environment
(`make test-tfio`, requirements-tfio.lock, TF 2.17.1) and the core path never imports it:
pydicom and soundfile decode everything there.
Select these decoders with `read_cine(path, decoder="tfio")` and `read_audio(path,
decoder="tfio")`; headers (frame order, rescale, spacing, photometric interpretation) are still
read with pydicom, so both decoders feed the same geometry and intensity steps.
"""

from __future__ import annotations

import numpy as np

from cmri2spec_tf.data.problems import DataError

# integer WAV samples -> float in [-1, 1), as libsndfile scales them
_FULL_SCALE = {"int16": 2.0**15, "int32": 2.0**31, "uint8": 2.0**7}


def unavailable_reason() -> str | None:
  """None when tensorflow-io loads with this TensorFlow, else why not."""
  try:
    import tensorflow_io  # noqa: F401
    import tensorflow_io.python.ops.image_ops  # noqa: F401  (its DICOM op library)
  except Exception as e:  # ImportError, or NotImplementedError/undefined symbols on TF >= 2.18
    return f"tensorflow-io does not load here ({type(e).__name__}: {str(e)[:200]})"
  return None


def dicom_pixels(path: str) -> np.ndarray:
  """Stored pixel values of every frame, float64 [frames, rows, cols] (no rescale applied)."""
  import tensorflow as tf
  import tensorflow_io as tfio

  try:
    image = tfio.image.decode_dicom_image(tf.io.read_file(path), on_error="strict",
                                          scale="preserve", dtype=tf.float64)
  except Exception as e:
    raise DataError(path, f"tensorflow-io cannot decode pixel data ({type(e).__name__})") from e
  return image.numpy()[..., 0]


def wav_samples(path: str) -> tuple[np.ndarray, int]:
  """(float32 [samples, channels] in [-1, 1], sample rate) of a PCM WAV file."""
  import tensorflow_io as tfio

  try:
    audio = tfio.audio.AudioIOTensor(path)
    samples, rate = audio.to_tensor().numpy(), int(audio.rate.numpy())
  except Exception as e:
    raise DataError(path, f"tensorflow-io cannot decode the audio ({type(e).__name__})") from e
  if samples.dtype.name in _FULL_SCALE:
    samples = samples / _FULL_SCALE[samples.dtype.name]
  return samples.astype(np.float32).reshape(samples.shape[0], -1), rate
