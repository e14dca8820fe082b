"""The heterogeneous translator of Table 1: a 3D-CNN encoder and a 2D transposed-conv decoder.

Encoder: 5 x [Conv3D(k=3, same) -> ReLU -> MaxPool3D(2, same)] with 32, 32, 64, 64, 128 filters:
26x128x128 -> 13x64x64 -> 7x32x32 -> 4x16x16 -> 2x8x8 -> 1x4x4, reshaped to [4, 4, 128].
Latent (Sec. 2): channel slices s = h[..., :100] (subject style), mu = h[..., 100:114],
logvar = h[..., 114:128] (the paper's "variance", predicted as its log). As Table 1 puts a ReLU
after every Conv3D, mu and logvar are >= 0, so sigma >= 1: we keep that, as specified.
Decoder: concat(s, w) (114 channels at 4x4) -> 4 x Conv2DTranspose(stride 2, same) with 96, 24,
4, 1 filters -> 8, 16, 32, 64; ReLU between, sigmoid last (computed in float32). The paper gives no
kernel size for the decoder: we use 4 (divisible by the stride, no checkerboard pattern).
Initialisation (not in the paper): He-normal for every ReLU convolution. With Keras's default
Glorot-uniform, five ReLU stages shrink the input-dependent part of the latent to ~0.1 % of its
mean (std across inputs 0.0013 vs mean 0.029, next to N(0, >=1) reparameterisation noise in w),
and the decoder's output stayed input-independent for hundreds of steps (we measured it
stalling at the mean spectrogram); He-normal keeps the signal (0.04 vs 1.0) and it learns.

Precision: every builder takes `precision` (precision.py) and builds under that dtype policy.
Mixed float16 on a CPU: TensorFlow has no float16 MaxPool3D kernel there, so when the policy
computes in float16 and no GPU is visible the pooling layers run in float32 (Keras casts around
them); on a GPU they stay float16.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from cmri2spec_tf.models.precision import compute_dtype, dtype_policy

MRI_SHAPE = (26, 128, 128, 1)
SPEC_SHAPE = (64, 64, 1)
ENCODER_FILTERS = (32, 32, 64, 64, 128)
DECODER_FILTERS = (96, 24, 4, 1)
STYLE_CHANNELS, CONTENT_CHANNELS = 100, 14
LATENT_GRID = (4, 4)
DECODER_KERNEL = 4
OUTPUT_LAYER = f"deconv_{len(DECODER_FILTERS)}"  # its bias sets the output level


def pooling_dtype(precision: str):
  """None (follow the policy) unless float16 compute would hit the CPU's missing kernel."""
  if compute_dtype(precision) == "float16" and not tf.config.list_logical_devices("GPU"):
    return "float32"
  return None


def build_encoder(precision: str = "float32") -> keras.Model:
  """MRI [B, 26, 128, 128, 1] -> h [B, 4, 4, 128] (Table 1, left)."""
  with dtype_policy(precision):
    mri = keras.Input(MRI_SHAPE, name="mri")
    x = mri
    pool_dtype = pooling_dtype(precision)
    for i, filters in enumerate(ENCODER_FILTERS, start=1):
      x = keras.layers.Conv3D(filters, 3, padding="same", activation="relu",
                              kernel_initializer="he_normal", name=f"conv3d_{i}")(x)
      x = keras.layers.MaxPooling3D(2, padding="same", dtype=pool_dtype, name=f"maxpool3d_{i}")(x)
    h = keras.layers.Reshape(LATENT_GRID + (ENCODER_FILTERS[-1],), name="to_latent_grid")(x)
    return keras.Model(mri, h, name="encoder")


def split_latent(h):
  """h [..., 128] -> (s [..., 100], mu [..., 14], logvar [..., 14]) by channel slices."""
  s = h[..., :STYLE_CHANNELS]
  mu = h[..., STYLE_CHANNELS:STYLE_CHANNELS + CONTENT_CHANNELS]
  logvar = h[..., STYLE_CHANNELS + CONTENT_CHANNELS:]
  return s, mu, logvar


def build_decoder(precision: str = "float32") -> keras.Model:
  """concat(s, w) [B, 4, 4, 114] -> spectrogram [B, 64, 64, 1] in (0, 1) (Table 1, right)."""
  with dtype_policy(precision):
    latent = keras.Input(LATENT_GRID + (STYLE_CHANNELS + CONTENT_CHANNELS,),
                         name="style_and_content")
    x = latent
    for i, filters in enumerate(DECODER_FILTERS, start=1):
      last = i == len(DECODER_FILTERS)
      x = keras.layers.Conv2DTranspose(filters, DECODER_KERNEL, strides=2, padding="same",
                                       activation=None if last else "relu",
                                       kernel_initializer="glorot_uniform" if last else "he_normal",
                                       name=f"deconv_{i}")(x)
    spectrogram = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x)
    return keras.Model(latent, spectrogram, name="decoder")


def build_translator(encoder: keras.Model, decoder: keras.Model,
                     precision: str = "float32") -> keras.Model:
  """The inference graph (Fig. 2, grey part): MRI -> spectrogram with w = mu (no sampling).
  `precision` is the one encoder and decoder were built under."""
  with dtype_policy(precision):
    mri = keras.Input(MRI_SHAPE, name="mri")
    s, mu, _ = split_latent(encoder(mri))
    style_and_content = keras.layers.Concatenate(axis=-1, name="s_w")([s, mu])
    return keras.Model(mri, decoder(style_and_content), name="translator")
