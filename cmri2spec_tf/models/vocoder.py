"""A neural vocoder for the project's mel setting: normalized mel frames -> waveform.

Vocos-style (Siuzdenko, "Vocos: Closing the gap between time-domain and Fourier-based neural
vocoders for high-quality audio synthesis", ICLR 2024): a ConvNeXt backbone at the mel frame
rate and an inverse-STFT head that predicts each frame's log magnitude and phase, so no layer
upsamples in time. Chosen over a HiFi-GAN-style generator because all of its work happens at
the frame rate (67 frames per second here, hop 330): it trains in minutes on a CPU and
synthesizes a second of audio in milliseconds, where HiFi-GAN's transposed convolutions run at
the sample rate. The head's STFT is the targets' own (n_fft 1024, hop 330, Hann, centred), so
frame j of the input lies at sample j x hop of the output, as librosa's frame j does.

One change to Vocos, for speakers the vocoder never heard: the head's log magnitude is a
residual on top of the mel spectrogram's least-squares linear magnitude (`MelPrior`: the
input undone to mel power by the fixed dB normalization, times the pseudo-inverse of the mel
filter bank, as Griffin-Lim starts from), so the spectral envelope is right for any voice from
the first step and the network learns the fine structure and the phase. Without it, a vocoder
trained on the 55 training subjects of the demo fold reproduced their mel spectrograms twice as
well as those of the 8 held-out subjects (resynthesis mel L1 0.015 vs 0.028).

Input:  mel   float [batch, frames, 64], the normalized spectrogram (data/spectrogram.py)
              transposed to time-major.
Output: waveform float32 [batch, (frames - 1) x hop] at the sample rate.
"""

from __future__ import annotations

import keras
from keras import layers

from cmri2spec_tf.base import numba_cache
from cmri2spec_tf.models import precision as precision_lib
from cmri2spec_tf.data.spectrogram import SpecParams

MAX_LOG_MAGNITUDE = 8.0  # exp(8) ~ 3,000: above any STFT magnitude of audio in [-1, 1]
POWER_FLOOR = 1e-10  # the normalization's amin


@keras.saving.register_keras_serializable(package="cmri2spec_tf")
class MelPrior(layers.Layer):
  """Normalized mel [batch, frames, n_mels] -> log linear magnitude [batch, frames, n_fft/2+1]:
  dB = db_min + y x (db_max - db_min), power = 10^(dB / 10), linear power = max(power x
  pinv(mel filter bank)^T, floor), log magnitude = log(linear power) / 2."""

  def __init__(self, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float,
               db_min: float, db_max: float, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self.settings = dict(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                         fmax=fmax, db_min=db_min, db_max=db_max)

  def build(self, input_shape):
    librosa = numba_cache.librosa()
    import numpy as np

    s = self.settings
    basis = librosa.filters.mel(sr=s["sample_rate"], n_fft=s["n_fft"], n_mels=s["n_mels"],
                                fmin=s["fmin"], fmax=s["fmax"])
    self.inverse = self.add_weight(shape=(s["n_mels"], s["n_fft"] // 2 + 1), name="inverse",
                                   trainable=False,
                                   initializer=keras.initializers.Constant(np.linalg.pinv(basis).T))

  def call(self, mel):
    s = self.settings
    mel = keras.ops.cast(mel, "float32")
    power = keras.ops.power(10.0, (s["db_min"] + mel * (s["db_max"] - s["db_min"])) / 10.0)
    linear = keras.ops.maximum(keras.ops.matmul(power, self.inverse), POWER_FLOOR)
    return 0.5 * keras.ops.log(linear)

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], self.settings["n_fft"] // 2 + 1)

  def get_config(self):
    config = super().get_config() | self.settings
    config.pop("trainable", None)
    return config


@keras.saving.register_keras_serializable(package="cmri2spec_tf")
class ISTFTHead(layers.Layer):
  """[batch, frames, 2 x (n_fft / 2 + 1)] -> waveform: the first half is the log magnitude,
  the second the phase in radians (Vocos's head: magnitude exp(m), clipped; phase used through
  cos and sin, so it needs no wrapping)."""

  def __init__(self, n_fft: int, hop_length: int, **kwargs):
    super().__init__(**kwargs)
    self.n_fft, self.hop_length = n_fft, hop_length

  def call(self, x):
    x = keras.ops.cast(x, "float32")
    log_magnitude, phase = keras.ops.split(x, 2, axis=-1)
    magnitude = keras.ops.exp(keras.ops.minimum(log_magnitude, MAX_LOG_MAGNITUDE))
    real, imag = magnitude * keras.ops.cos(phase), magnitude * keras.ops.sin(phase)
    return keras.ops.istft((real, imag), self.n_fft, self.hop_length, self.n_fft,
                           window="hann", center=True)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], None)

  def get_config(self):
    return super().get_config() | {"n_fft": self.n_fft, "hop_length": self.hop_length}


def convnext_block(x, channels: int, name: str):
  """Depthwise conv (kernel 7) -> LayerNorm -> pointwise 3x expansion, GELU -> back; residual."""
  y = layers.DepthwiseConv1D(7, padding="same", name=f"{name}_dwconv")(x)
  y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")(y)
  y = layers.Dense(3 * channels, activation="gelu", name=f"{name}_expand")(y)
  y = layers.Dense(channels, name=f"{name}_project")(y)
  return layers.Add(name=f"{name}_residual")([x, y])


def build_vocoder(params: SpecParams = SpecParams(), channels: int = 128, blocks: int = 4,
                  precision: str = "float32") -> keras.Model:
  """The generator for spectrograms of `params`, as a functional Keras model (the prior and the
  head always compute in float32). The log-magnitude residual starts at zero: the untrained
  generator voices the least-squares magnitude."""
  bins = params.n_fft // 2 + 1
  with precision_lib.dtype_policy(precision):
    mel = keras.Input((None, params.n_mels), name="mel")
    prior = MelPrior(params.sample_rate, params.n_fft, params.n_mels, params.fmin, params.fmax,
                     params.db_min, params.db_max, name="mel_prior", dtype="float32")(mel)
    x = layers.Conv1D(channels, 7, padding="same", name="embed")(mel)
    x = layers.LayerNormalization(epsilon=1e-6, name="embed_norm")(x)
    for i in range(blocks):
      x = convnext_block(x, channels, f"block{i}")
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    residual = layers.Dense(bins, kernel_initializer="zeros", name="log_magnitude_residual",
                            dtype="float32")(x)
    phase = layers.Dense(bins, name="phase", dtype="float32")(x)
    log_magnitude = layers.Add(name="log_magnitude", dtype="float32")([prior, residual])
    spectrum = layers.Concatenate(name="spectrum", dtype="float32")([log_magnitude, phase])
    waveform = ISTFTHead(params.n_fft, params.hop_length, name="istft", dtype="float32")(spectrum)
  return keras.Model(mel, waveform, name="vocoder")
