"""tf.data pipelines: pairs of examples from two subjects for training, single examples for tests.

An example is (recording r, window k): the recording's MRI (26 frames, the same for all its
windows, as in the paper) and the k-th of its sliding-window spectrograms. An epoch visits every
example once as the first member of a pair, in a new order; its partner is a random window of a
recording of a *different subject*, of the same word with probability `same_word_share` (when such
a subject exists), else of the other word. The KL term (eq. 2) is applied to same-word pairs only.

Index sampling is NumPy, seeded by (seed, epoch), so epoch e has the same pairs in any run
(resume included); gathering the arrays runs in the graph. The float16 storage is expanded to
float32 in NumPy once per pipeline (exact): no float16 op reaches TensorFlow's CPU kernels,
whose oneDNN check logs an error line for them on CPUs without AVX-512 FP16.

Augmentation (not in the paper; `shift_px` > 0, `--shift_px`): each member's 26 frames move
together by an in-plane shift drawn uniformly in [-shift_px, shift_px] pixels per axis
(`shifted`), drawn from the same (seed, epoch) generator after the pairs, so the pairs are those
of a run without it and a resumed run sees the same shifts. Test examples are never moved.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cmri2spec_tf.base.errors import ConfigError
from cmri2spec_tf.data.dataset import ArrayDataset

PAIR_KEYS = ("mri_a", "spec_a", "mri_b", "spec_b", "same_word")


def sample_pairs(subject_ids, words, n_windows: int, same_word_share: float,
                 rng: np.random.Generator) -> np.ndarray:
  """int64 [R * n_windows, 5]: (rec_a, win_a, rec_b, win_b, same_word), shuffled."""
  subject_ids, words = np.asarray(subject_ids), np.asarray(words)
  if len(set(subject_ids.tolist())) < 2:
    raise ConfigError("pairs need recordings of at least 2 different subjects in the training "
                      "fold")
  chunks = []
  for rec in range(len(subject_ids)):
    other = subject_ids != subject_ids[rec]
    same = np.flatnonzero(other & (words == words[rec]))
    different = np.flatnonzero(other & (words != words[rec]))
    want_same = rng.random(n_windows) < same_word_share
    if same.size == 0:
      want_same[:] = False
    if different.size == 0:
      want_same[:] = True
    partner = np.where(want_same, rng.choice(same, n_windows) if same.size else -1,
                       rng.choice(different, n_windows) if different.size else -1)
    chunks.append(np.stack([np.full(n_windows, rec), np.arange(n_windows), partner,
                            rng.integers(0, n_windows, n_windows), want_same.astype(np.int64)],
                           axis=1))
  pairs = np.concatenate(chunks).astype(np.int64)
  return pairs[rng.permutation(len(pairs))]


class _EpochPairs:
  """Generator factory for tf.data: each new iteration (epoch) draws that epoch's pairs."""

  def __init__(self, data: ArrayDataset, same_word_share: float, seed: int, first_epoch: int,
               pairs_per_epoch: int | None, shift_px: float = 0.0):
    self._data, self._share, self._seed = data, same_word_share, seed
    self._limit, self._shift_px = pairs_per_epoch, shift_px
    self.next_epoch = first_epoch

  def __call__(self):
    """Yields (pairs int64 [N, 5], shifts float32 [N, 4]: rows and columns of member a, then of
    member b; zeros without augmentation)."""
    rng = np.random.default_rng([self._seed, self.next_epoch])
    self.next_epoch += 1
    epoch_pairs = sample_pairs(self._data.subject_ids, self._data.pair_keys,
                               self._data.spectrograms.shape[1], self._share, rng)[:self._limit]
    shifts = np.zeros((len(epoch_pairs), 4), np.float32)
    if self._shift_px:
      shifts[:] = rng.uniform(-self._shift_px, self._shift_px, shifts.shape)
    yield epoch_pairs, shifts


def pairs_dataset(data: ArrayDataset, batch_size: int, same_word_share: float = 0.5,
                  seed: int = 0, first_epoch: int = 0, pairs_per_epoch: int | None = None,
                  deterministic: bool = False, shift_px: float = 0.0) -> tf.data.Dataset:
  """Batches of dicts with PAIR_KEYS: mri_* [B,26,128,128,1], spec_* [B,64,64,1], same_word [B].

  One pass over the dataset is one epoch; iterate it again for the next (Keras `fit` does).
  `pairs_per_epoch` keeps the first N of an epoch's shuffled pairs (short epochs on a CPU).
  Incomplete last batches are dropped so every step has the same shape. `deterministic`: the
  run enabled TensorFlow's op determinism (the map then runs sequentially, see _parallel_calls).
  `shift_px`: the MRI augmentation (module docstring; 0: none, the paper's pipeline).
  """
  mri, spec = _as_float32_constant(data.mri), _as_float32_constant(data.spectrograms)
  indices = tf.data.Dataset.from_generator(
      _EpochPairs(data, same_word_share, seed, first_epoch, pairs_per_epoch, shift_px),
      output_signature=(tf.TensorSpec([None, 5], tf.int64),
                        tf.TensorSpec([None, 4], tf.float32))).unbatch()

  def member_mri(rows, shift):
    clips = tf.gather(mri, rows)
    return _expand(shifted(clips, shift) if shift_px else clips)

  def gather(idx, shifts):
    return {
        "mri_a": member_mri(idx[:, 0], shifts[:, 0:2]),
        "spec_a": _expand(tf.gather_nd(spec, idx[:, 0:2])),
        "mri_b": member_mri(idx[:, 2], shifts[:, 2:4]),
        "spec_b": _expand(tf.gather_nd(spec, idx[:, 2:4])),
        "same_word": tf.cast(idx[:, 4], tf.float32),
    }

  n_pairs = len(data) * data.spectrograms.shape[1]
  n_batches = min(n_pairs, pairs_per_epoch or n_pairs) // batch_size
  if n_batches == 0:
    raise ConfigError(f"--batch_size={batch_size}: the {min(n_pairs, pairs_per_epoch or n_pairs)} "
                      "pairs of an epoch make no batch")
  return (indices.batch(batch_size, drop_remainder=True)
          .apply(tf.data.experimental.assert_cardinality(n_batches))
          .map(gather, num_parallel_calls=_parallel_calls(deterministic))
          .prefetch(tf.data.AUTOTUNE))


def examples_dataset(data: ArrayDataset, batch_size: int, window_stride: int = 1) -> tf.data.Dataset:
  """Every (mri, spectrogram) example once, in dataset order, as Keras (x, y) batches.

  `window_stride` > 1 keeps every n-th window of each recording (cheaper monitoring in training;
  evaluation uses all windows).
  """
  n_windows = data.spectrograms.shape[1]
  mri, spec = _as_float32_constant(data.mri), _as_float32_constant(data.spectrograms)
  records, windows = np.divmod(np.arange(len(data) * n_windows), n_windows)
  keep = windows % window_stride == 0
  indices = tf.data.Dataset.from_tensor_slices(np.stack([records[keep], windows[keep]], axis=1))

  def gather(idx):
    return _expand(tf.gather(mri, idx[:, 0])), _expand(tf.gather_nd(spec, idx))

  return (indices.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def recordings_dataset(data: ArrayDataset, batch_size: int,
                       window_stride: int = 1) -> tf.data.Dataset:
  """Keras (x, y) batches with one element per recording: its MRI [B, 26, 128, 128, 1] and all
  its windows [B, W, 64, 64, 1] (every `window_stride`-th). The MRI is the same for every window
  of a recording, so validating on these needs one forward pass per recording, not per window;
  the trainer's test_step compares that prediction with each window (the same numbers as
  `examples_dataset`, W times cheaper)."""
  mri = data.mri.astype(np.float32)[..., None]
  spec = data.spectrograms[:, ::window_stride].astype(np.float32)[..., None]
  return (tf.data.Dataset.from_tensor_slices((mri, spec)).batch(batch_size)
          .prefetch(tf.data.AUTOTUNE))


def shifted(clips: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
  """clips [B, T, H, W] moved in-plane by shifts [B, 2] (rows down, columns right; pixels,
  fractions by bilinear interpolation), all T frames of a clip alike; the edge pixels extend
  into what comes in. The anatomy's size is left as it is: it carries the vocal tract's length."""
  frames_last = tf.transpose(clips, [0, 2, 3, 1])  # the frames as channels: one shift per clip
  ones, zeros = tf.ones_like(shifts[:, :1]), tf.zeros_like(shifts[:, :1])
  # Keras's row maps each output pixel (x, y) to the input point (x - columns, y - rows).
  transform = tf.concat([ones, zeros, -shifts[:, 1:], zeros, ones, -shifts[:, :1], zeros, zeros],
                        axis=1)
  moved = keras.ops.image.affine_transform(frames_last, transform, interpolation="bilinear",
                                           fill_mode="nearest", data_format="channels_last")
  return tf.transpose(moved, [0, 3, 1, 2])


def _as_float32_constant(stored: np.ndarray) -> tf.Tensor:
  return tf.constant(stored.astype(np.float32, copy=False))


def _expand(gathered: tf.Tensor) -> tf.Tensor:
  """Gathered arrays -> model input with a channel axis."""
  return gathered[..., None]


def _parallel_calls(deterministic: bool):
  """AUTOTUNE, or sequential under op determinism: tf.data would rewrite the parallel map into a
  sequential one there anyway, and the rewrite logs an error line for an attribute it keeps."""
  return None if deterministic else tf.data.AUTOTUNE
