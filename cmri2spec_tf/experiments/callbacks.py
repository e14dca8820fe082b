"""TensorBoard extras the Keras TensorBoard callback does not write for a two-optimizer GAN."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.audio import metadata as audio_metadata

from cmri2spec_tf.speech import plots, speech_metrics, vocoders
from cmri2spec_tf.data.audio import wav_bytes
from cmri2spec_tf.data.spectrogram import SpecParams


class HeldOutImages(keras.callbacks.Callback):
  """Both learning rates every epoch; every `every` epochs images of fixed held-out examples
  (ground truth | prediction | absolute error, colormapped, frequency axis bottom-up); every
  `audio_every` epochs their predicted and true sound (the mel spectrograms through `vocoder`,
  Griffin-Lim by default) and, given the examples' own audio (`references`), the speech
  metrics of the predicted sound against it (heldout_speech/stoi, estoi, mcd, pesq: means over
  the examples). With `latent` (latents.LatentInputs: every recording's MRI, words, colours) and a
  model with an encoder, the images epochs also get latent/pca (latents.latent_png). Epoch 1
  always gets everything. No examples (`--n_images=0`): the learning rates only. Own writer under
  `log_dir` (not shared with Keras's TensorBoard)."""

  def __init__(self, log_dir: str, mri: np.ndarray, spectrograms: np.ndarray, names: list[str],
               params: SpecParams, every: int = 1, audio_every: int = 5, vocoder=None,
               references: np.ndarray | None = None, latent=None):
    super().__init__()
    self.mri, self.spectrograms, self.names = mri, spectrograms, names
    self.spec_params, self.every, self.audio_every = params, max(1, every), max(1, audio_every)
    self.vocoder = vocoder or vocoders.GriffinLim(params)
    self.references, self.latent = references, latent
    self.writer = tf.summary.create_file_writer(log_dir)

  def on_epoch_end(self, epoch, logs=None):
    step = epoch + 1
    if not all(np.isfinite(float(v)) for v in (logs or {}).values()):
      return  # a diverged epoch: nothing to show (TerminateOnNaN stops the run)
    with self.writer.as_default(step=step):
      for name, optimizer in self.model.optimizers_by_name().items():
        tf.summary.scalar(f"learning_rate/{name}", _value(optimizer.learning_rate))
      shown = len(self.names) > 0
      images = shown and (step % self.every == 0 or step == 1)
      sound = shown and (step % self.audio_every == 0 or step == 1)
      predictions = self.model.predict_on_batch(self.mri) if images or sound else None
      if images:
        tf.summary.image("heldout/truth_prediction_error", self._images(predictions),
                         max_outputs=len(self.names))
        if self.latent is not None and getattr(self.model, "encoder", None) is not None:
          tf.summary.image("latent/pca", self._latent_image(step))
      if sound:
        predicted = self._sounds(predictions)
        write_audio("heldout/audio_prediction", predicted, self.spec_params)
        write_audio("heldout/audio_truth", self._sounds(self.spectrograms), self.spec_params)
        if self.references is not None:
          self._speech_scalars(predicted)
    self.writer.flush()

  def _sounds(self, spectrograms) -> list[np.ndarray]:
    """Each spectrogram through the vocoder, peak-limited to [-1, 1]."""
    waveforms = self.vocoder.many(np.asarray(spectrograms, np.float32)[..., 0])
    return [w / max(1.0, float(np.abs(w).max())) for w in waveforms]

  def _speech_scalars(self, predicted: list[np.ndarray]) -> None:
    rate = self.spec_params.sample_rate
    scores = speech_metrics.mean_scores([speech_metrics.audio_scores(ref, sound, rate)
                                         for ref, sound in zip(self.references, predicted)])
    for metric, value in scores.items():
      if value is not None:
        tf.summary.scalar(f"heldout_speech/{metric}", value)

  def _latent_image(self, step: int) -> tf.Tensor:
    from cmri2spec_tf.evaluation import latents as latents_lib

    latents = latents_lib.encode(self.model.encoder, self.latent.mri)
    png = latents_lib.latent_png(latents, self.latent.words, self.latent.colours,
                            self.latent.colour_name, f"epoch {step}: every recording")
    return tf.cast(tf.io.decode_png(png, channels=3)[None], tf.float32) / 255.0

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


def held_out_picks(heldout, n_examples: int) -> list[tuple[int, int]]:
  """A fixed set of (recording, window): n examples spread over the held-out subjects and their
  windows."""
  n_windows = heldout.spectrograms.shape[1]
  return [(i % len(heldout), (i * 37 + n_windows // 2) % n_windows) for i in range(n_examples)]


def held_out_examples(heldout, picks: list[tuple[int, int]]):
  """(mri [n, 26, 128, 128, 1], spectrograms [n, 64, 64, 1], names) of the picks (n may be 0)."""
  rows, windows = [r for r, _ in picks], [k for _, k in picks]
  mri = heldout.mri[rows].astype(np.float32)[..., None]
  spec = heldout.spectrograms[rows, windows].astype(np.float32)[..., None]
  names = [f"{heldout.subject_ids[r]} window {k}" for r, k in picks]
  return mri, spec, names


class EpochLine(keras.callbacks.Callback):
  """One printed line per epoch: a label (the ablation's job), the epoch, its losses and the
  held-out L1; for runs whose Keras progress output is off."""

  def __init__(self, label: str, epochs: int):
    super().__init__()
    self.label, self.epochs = label, epochs

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    losses = " ".join(f"{k} {v:.4f}" for k, v in logs.items() if not k.startswith("val_"))
    heldout = logs.get("val_l1")
    print(f"{self.label}: epoch {epoch + 1}/{self.epochs} {losses}"
          + (f"; held-out L1 {heldout:.4f}" if heldout is not None else ""), flush=True)


def write_audio(tag: str, waveforms: list[np.ndarray], params: SpecParams) -> None:
  """An audio summary of mono waveforms, in TensorBoard's format: a [k, 2] string tensor of
  (16-bit WAV bytes, label). Written here rather than with tf.summary.audio, whose string
  transpose makes TensorFlow's oneDNN CPU kernels log an error line every time."""
  clips = np.array([[wav_bytes(w, params.sample_rate), b""] for w in waveforms], dtype=object)
  metadata = audio_metadata.create_summary_metadata(
      display_name=None, description=None, encoding=audio_metadata.Encoding.Value("WAV"))
  tf.summary.write(tag, tf.constant(clips, tf.string), metadata=metadata)


class SelectionL1(keras.callbacks.Callback):
  """Adds `sel_l1`, the L1 on the selection subjects' recordings (`--selection_subjects`), to
  the epoch's logs, read as validation reads the model (the weight average, where the recipe
  keeps one): place it first, before AveragedWeights, the checkpoint and TensorBoard."""

  def __init__(self, recordings):
    super().__init__()
    self.recordings = recordings

  def on_epoch_end(self, epoch, logs=None):
    if logs is not None:
      logs["sel_l1"] = float(self.model.evaluate(self.recordings, verbose=0,
                                                 return_dict=True)["l1"])


class AveragedWeights(keras.callbacks.Callback):
  """Under a recipe that keeps a weight average (training/recipes.py): validation and the
  callbacks before this one at the epoch's end read the averaged translator (swapped in as
  validation begins), the callbacks after it (the checkpoint) the raw weights training resumes
  from. Does nothing without an average."""

  def __init__(self):
    super().__init__()
    self._raw = None

  def on_test_begin(self, logs=None):
    if self._raw is None:
      self._raw = self.model.use_average()

  def on_epoch_end(self, epoch, logs=None):
    self.model.use_raw(self._raw)
    self._raw = None

  def on_train_end(self, logs=None):  # stopped within an epoch: leave the raw weights
    self.on_epoch_end(-1)
