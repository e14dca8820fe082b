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


# ------------------------------------------------------------------ the vocoder (models/vocoder.py)
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft = window, hop)


def multi_resolution_stft(waveform, waveform_hat, resolutions=STFT_RESOLUTIONS, eps=1e-5):
  """Multi-resolution STFT loss (Yamamoto et al., Parallel WaveGAN, ICASSP 2020, eqs. 4-6): per
  resolution, spectral convergence ||S| - |S_hat||_F / ||S||_F plus the mean |log|S| -
  log|S_hat||; averaged over the resolutions. Waveforms [B, samples]; returns [B]."""
  total = 0.0
  for n_fft, hop in resolutions:
    magnitude, magnitude_hat = (_stft_magnitude(w, n_fft, hop) for w in (waveform, waveform_hat))
    convergence = (tf.norm(magnitude - magnitude_hat, axis=[-2, -1])
                   / (tf.norm(magnitude, axis=[-2, -1]) + eps))
    log_distance = tf.reduce_mean(
        tf.abs(tf.math.log(magnitude + eps) - tf.math.log(magnitude_hat + eps)), axis=[1, 2])
    total += convergence + log_distance
  return total / len(resolutions)


def log_mel_l1(waveform, waveform_hat, mel_matrix, n_fft: int, hop: int, eps=1e-5):
  """Mean |log mel(y) - log mel(y_hat)| with the targets' own mel filter bank `mel_matrix`
  [n_fft / 2 + 1, n_mels] (Vocos's reconstruction loss; HiFi-GAN's mel loss). Returns [B]."""
  mel, mel_hat = (tf.matmul(_stft_magnitude(w, n_fft, hop), mel_matrix)
                  for w in (waveform, waveform_hat))
  return tf.reduce_mean(tf.abs(tf.math.log(mel + eps) - tf.math.log(mel_hat + eps)), axis=[1, 2])


def _stft_magnitude(waveform, n_fft, hop):
  return tf.abs(tf.signal.stft(tf.cast(waveform, tf.float32), n_fft, hop, n_fft,
                               window_fn=tf.signal.hann_window, pad_end=True))
