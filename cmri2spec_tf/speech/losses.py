"""The neural vocoder's training losses (speech/vocoders.py): multi-resolution STFT and log-mel.

All take float32 waveforms [B, samples] and return per-example losses [B].
"""

import tensorflow as tf

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
