"""TensorBoard extras the Keras TensorBoard callback does not write for a two-optimizer GAN."""

from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from cmri2spec_tf import plots
from cmri2spec_tf.data.spectrogram import SpecParams, waveform_from_normalized


class HeldOutImages(keras.callbacks.Callback):
  """Both learning rates every epoch; every `every` epochs images of fixed held-out examples
  (ground truth | prediction | absolute error, colormapped, frequency axis bottom-up); every
  `audio_every` epochs their predicted and true sound (Griffin-Lim of the mel spectrograms).
  Epoch 1 always gets both. Own writer under `log_dir` (not shared with Keras's TensorBoard)."""

  def __init__(self, log_dir: str, mri: np.ndarray, spectrograms: np.ndarray, names: list[str],
               params: SpecParams, every: int = 1, audio_every: int = 5):
    super().__init__()
    self.mri, self.spectrograms, self.names = mri, spectrograms, names
    self.spec_params, self.every, self.audio_every = params, max(1, every), max(1, audio_every)
    self.writer = tf.summary.create_file_writer(log_dir)

  def on_epoch_end(self, epoch, logs=None):
    step = epoch + 1
    with self.writer.as_default(step=step):
      for name, optimizer in self.model.optimizers_by_name().items():
        tf.summary.scalar(f"learning_rate/{name}", _value(optimizer.learning_rate))
      images, sound = step % self.every == 0 or step == 1, step % self.audio_every == 0 or step == 1
      predictions = self.model.predict_on_batch(self.mri) if images or sound else None
      if images:
        tf.summary.image("heldout/truth_prediction_error", self._images(predictions),
                         max_outputs=len(self.names))
      if sound:
        rate = self.spec_params.sample_rate
        tf.summary.audio("heldout/audio_prediction", self._sounds(predictions), rate,
                         max_outputs=len(self.names))
        tf.summary.audio("heldout/audio_truth", self._sounds(self.spectrograms), rate,
                         max_outputs=len(self.names))
    self.writer.flush()

  def _sounds(self, spectrograms) -> tf.Tensor:
    """[k, window_samples, 1] in [-1, 1]: Griffin-Lim of each spectrogram, peak-limited."""
    waveforms = [waveform_from_normalized(s, self.spec_params) for s in spectrograms]
    waveforms = [w / max(1.0, float(np.abs(w).max())) for w in waveforms]
    return tf.constant(np.stack(waveforms)[..., None], tf.float32)

  def _images(self, predictions) -> tf.Tensor:
    pngs = []
    for name, truth, prediction in zip(self.names, self.spectrograms, predictions):
      error = np.abs(truth - prediction)
      pngs.append(tf.io.decode_png(plots.spectrogram_row_png(
          {"ground truth": truth, "prediction": prediction, "absolute error": error},
          self.spec_params, title=f"{name}: L1 {error.mean():.3f}"), channels=3))
    return tf.cast(tf.stack(pngs), tf.float32) / 255.0


def _value(variable) -> float:
  """A scalar variable's value, also for a tf.distribute MirroredVariable."""
  return float(keras.ops.convert_to_numpy(variable))


def held_out_examples(heldout, n_examples: int):
  """A fixed set: n examples spread over the held-out subjects and their windows."""
  n_windows = heldout.spectrograms.shape[1]
  picks = [(i % len(heldout), (i * 37 + n_windows // 2) % n_windows) for i in range(n_examples)]
  mri = np.stack([heldout.mri[r] for r, _ in picks]).astype(np.float32)[..., None]
  spec = np.stack([heldout.spectrograms[r, k] for r, k in picks]).astype(np.float32)[..., None]
  names = [f"{heldout.subject_ids[r]} window {k}" for r, k in picks]
  return mri, spec, names


