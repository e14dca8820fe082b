"""The objective of the paper, one function per term, each per example (shape [B]).

All take float32 tensors (the trainer casts) and leave the batch reduction to the caller.
"""

import tensorflow as tf


def reconstruction_mse(y, y_hat):
  """Eq. (1): 1/2 * sum over the 64 x 64 pixels of (y - y_hat)^2."""
  return 0.5 * tf.reduce_sum(tf.square(y - y_hat), axis=[1, 2, 3])


def pairwise_kl(mu1, logvar1, mu2, logvar2):
  """Eq. (2): KL(N(mu1, s1^2) || N(mu2, s2^2)) summed over the M = 14 channels, mean over 4 x 4.

  -1/2 * sum_m [1 + log(s1^2 / s2^2) - s1^2 / s2^2 - (mu1 - mu2)^2 / s2^2].
  """
  ratio = tf.exp(logvar1 - logvar2)
  per_channel = -0.5 * (1.0 + (logvar1 - logvar2) - ratio - tf.square(mu1 - mu2) * tf.exp(-logvar2))
  return tf.reduce_mean(tf.reduce_sum(per_channel, axis=-1), axis=[1, 2])


def translator_adversarial(fake_logits):
  """L_T, non-saturating: -log D(y_hat), D = sigmoid(logits) the probability of "real"."""
  return tf.nn.softplus(-tf.reshape(fake_logits, [-1]))


def discriminator_bce(real_logits, fake_logits):
  """L_Dis: binary cross-entropy with real -> 1 and translated -> 0 (eqs. 3 and 6)."""
  return tf.nn.softplus(-tf.reshape(real_logits, [-1])) + tf.nn.softplus(tf.reshape(fake_logits, [-1]))
