"""Lip2AudSpec (Akbari et al., ICASSP 2018) re-implemented for cine MRI, the paper's baseline.

The paper (Sec. 3.3, Table 2, Fig. 3) compares against Lip2AudSpec "reimplemented suitable for MRI
data": a 3D CNN with a temporal window of 5 for local motion, an RNN (LSTM) for long-term temporal
modelling, and fully connected layers that produce the spectrogram. It is trained as a single
translator (MSE only, no pairs, no GAN). The paper gives no layer sizes for its re-implementation;
ours, chosen so that its cost per sequence is close to the CMRI2SPEC encoder's and its parameter
count is about 10x the translator's (the paper: "10x fewer parameters than Lip2AudSpec"):

  MRI [26, 128, 128, 1]
  -> Conv3D(16, (5, 3, 3), stride (1, 2, 2)) -> 26 x 64 x 64     (time is never pooled:
  -> 3 x [Conv3D((5, 3, 3)) -> MaxPool3D((1, 2, 2))]              every frame keeps its features)
     with 32, 64, 64 filters -> 26 x 8 x 8, then MaxPool (1, 2, 2) -> 26 x 4 x 4 x 64
  -> per frame flatten (26 x 1024) -> LSTM(256) over the 26 frames (last state)
  -> Dense(1024, ReLU) -> Dense(4096, sigmoid in float32) -> [64, 64, 1]
"""

from __future__ import annotations

import keras

from cmri2spec_tf.models.translator import MRI_SHAPE, SPEC_SHAPE, pooling_dtype
from cmri2spec_tf.models.precision import dtype_policy

TEMPORAL_WINDOW = 5
CONV_FILTERS = (16, 32, 64, 64)
LSTM_UNITS = 256
DENSE_UNITS = 1024
OUTPUT_LAYER = "fc_out"  # its bias sets the output level


def build_lip2audspec(precision: str = "float32") -> keras.Model:
  """MRI [B, 26, 128, 128, 1] -> spectrogram [B, 64, 64, 1] in (0, 1)."""
  with dtype_policy(precision):
    mri = keras.Input(MRI_SHAPE, name="mri")
    pool_dtype = pooling_dtype(precision)
    kernel = (TEMPORAL_WINDOW, 3, 3)
    x = keras.layers.Conv3D(CONV_FILTERS[0], kernel, strides=(1, 2, 2), padding="same",
                            activation="relu", kernel_initializer="he_normal", name="conv3d_1")(mri)
    for i, filters in enumerate(CONV_FILTERS[1:], start=2):
      x = keras.layers.Conv3D(filters, kernel, padding="same", activation="relu",
                              kernel_initializer="he_normal", name=f"conv3d_{i}")(x)
      x = keras.layers.MaxPooling3D((1, 2, 2), dtype=pool_dtype, name=f"maxpool3d_{i}")(x)
    x = keras.layers.MaxPooling3D((1, 2, 2), dtype=pool_dtype, name="maxpool3d_last")(x)
    frames = MRI_SHAPE[0]
    x = keras.layers.Reshape((frames, -1), name="frame_features")(x)
    x = keras.layers.LSTM(LSTM_UNITS, name="lstm")(x)
    x = keras.layers.Dense(DENSE_UNITS, activation="relu", kernel_initializer="he_normal",
                           name="fc_1")(x)
    x = keras.layers.Dense(SPEC_SHAPE[0] * SPEC_SHAPE[1], name=OUTPUT_LAYER)(x)
    x = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x)
    spectrogram = keras.layers.Reshape(SPEC_SHAPE, name="spectrogram")(x)
    return keras.Model(mri, spectrogram, name="lip2audspec")
