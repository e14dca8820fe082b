"""The discriminator (Sec. 2): three convolutions and two fully connected layers.

3 x [Conv2D(k=4, stride 2, same) -> LeakyReLU(0.2)] with 32, 64, 128 filters: 64 -> 32 -> 16 -> 8;
Flatten -> Dense(128) -> LeakyReLU(0.2) -> Dense(1). It returns logits (float32); the losses apply
the sigmoid, which is numerically stable and safe under mixed precision.

LeakyReLU is computed as max(x, 0.2 x) (`MaxLeakyReLU`): the same values, and a gradient that
does not need the convolution's pre-activation. With tf.nn.leaky_relu, TensorFlow's grappler
fuses Conv2D + BiasAdd + LeakyRelu, finds LeakyReluGrad still reading the removed BiasAdd, logs
"remapper failed" at error level and skips every fusion of the training step.
"""

import keras

from cmri2spec_tf.models.translator import SPEC_SHAPE
from cmri2spec_tf.models.precision import dtype_policy

FILTERS = (32, 64, 128)
HIDDEN_UNITS = 128
SLOPE = 0.2


@keras.saving.register_keras_serializable(package="cmri2spec_tf")
class MaxLeakyReLU(keras.layers.Layer):
  """LeakyReLU with slope < 1, as max(x, slope * x)."""

  def __init__(self, slope: float = SLOPE, **kwargs):
    super().__init__(**kwargs)
    self.slope = float(slope)

  def call(self, x):
    return keras.ops.maximum(x, self.slope * x)

  def get_config(self):
    return super().get_config() | {"slope": self.slope}


def build_discriminator(precision: str = "float32") -> keras.Model:
  """Spectrogram [B, 64, 64, 1] -> logit [B, 1] (float32)."""
  with dtype_policy(precision):
    spectrogram = keras.Input(SPEC_SHAPE, name="spectrogram")
    x = spectrogram
    for i, filters in enumerate(FILTERS, start=1):
      x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"conv2d_{i}")(x)
      x = MaxLeakyReLU(name=f"leaky_relu_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(HIDDEN_UNITS, name="dense_1")(x)
    x = MaxLeakyReLU(name="leaky_relu_dense")(x)
    logits = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(spectrogram, logits, name="discriminator")
