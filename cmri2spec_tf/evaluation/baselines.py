"""The trivial baselines a model must beat, given the same input (the MRI of each recording).

  mean spectrogram   the mean of every training window (one image for everyone),
  nearest neighbour  the mean spectrogram of the training recording whose MRI sequence is closest
                     (Euclidean distance over the normalized 26 x 128 x 128 voxels).
Training prints the first against the held-out L1 it monitors, and at its end every lookup level
(`lookup_levels`: these two, the word's mean and each recording's own mean, the floor no model
of one MRI input per recording can beat); evaluation scores both methods and shows the other two
as reference levels (`references`: they are told the word or the truth, so they are not methods).
"""

from __future__ import annotations

import numpy as np

from cmri2spec_tf.data.dataset import ArrayDataset

NAMES = ("mean", "nearest_neighbour")


def mean_window(train: ArrayDataset) -> np.ndarray:
  """[64, 64]: the mean of every training window."""
  return train.spectrograms.astype(np.float32).mean(axis=(0, 1))


def mean_spectrogram(train: ArrayDataset, heldout: ArrayDataset) -> np.ndarray:
  """[R, 64, 64]: the mean training window, for every held-out recording."""
  mean = mean_window(train)
  return np.broadcast_to(mean, (len(heldout),) + mean.shape).copy()


def mean_spectrogram_l1(train: ArrayDataset, heldout: ArrayDataset,
                        window_stride: int = 1) -> float:
  """L1 of always predicting the mean training window, on the held-out windows that training
  monitors as `val_l1` (every window_stride-th)."""
  targets = heldout.spectrograms[:, ::window_stride].astype(np.float32)
  return float(np.abs(targets - mean_window(train)).mean())


class MriIndex:
  """The training recordings' MRI, flattened once, for nearest-neighbour lookups (Euclidean
  distance over the normalized voxels)."""

  def __init__(self, train: ArrayDataset):
    self.train_mri = train.mri.reshape(len(train), -1).astype(np.float32)
    self.squared_norms = np.einsum("ij,ij->i", self.train_mri, self.train_mri)

  def nearest(self, mri: np.ndarray) -> np.ndarray:
    """int [B]: the closest training recording of each of the MRI series [B, 26, 128, 128]."""
    return np.array([int(np.argmin(self.squared_norms - 2 * self.train_mri @ one))
                     for one in np.asarray(mri, np.float32).reshape(len(mri), -1)], np.int64)


def nearest_neighbour(train: ArrayDataset, heldout: ArrayDataset) -> np.ndarray:
  """[R, 64, 64]: the mean spectrogram of the training recording with the closest MRI."""
  picks = MriIndex(train).nearest(heldout.mri)
  return train.spectrograms[picks].astype(np.float32).mean(axis=1)


def word_mean_predictions(train: ArrayDataset, heldout: ArrayDataset) -> np.ndarray:
  """[R, 64, 64]: the mean training window of each held-out recording's own word (the mean
  window for a word no training recording has); for time-aligned clips, of the clips at the
  same position of the same stimulus (`pair_keys`, data/clips.py). Not a method (it is told the
  word): the level a model that recognised only the word would reach (probes.py)."""
  words = np.asarray(train.pair_keys)
  means = {w: train.spectrograms[words == w].astype(np.float32).mean(axis=(0, 1))
           for w in set(train.pair_keys)}
  fallback = mean_window(train)
  return np.stack([means.get(w, fallback) for w in heldout.pair_keys])


def lookup_levels(train: ArrayDataset, heldout: ArrayDataset,
                  window_stride: int = 1) -> dict[str, float]:
  """The held-out L1 of each lookup, on the windows training monitors (every window_stride-th):
  the mean spectrogram, the nearest neighbour, the word's mean (told the word) and the
  recording-mean floor (each recording's own mean window: all windows of a recording share one
  MRI input, so no model does better on average)."""
  targets = heldout.spectrograms[:, ::window_stride].astype(np.float32)
  l1 = lambda predicted: float(np.abs(targets - predicted[:, None]).mean())
  return {"mean_spectrogram": l1(mean_spectrogram(train, heldout)),
          "nearest_neighbour": l1(nearest_neighbour(train, heldout)),
          "word_mean": l1(word_mean_predictions(train, heldout)),
          "recording_floor": l1(targets.mean(axis=1))}


REFERENCE_LABELS = {"word_mean": "(word's mean, told the word)",
                    "recording_mean": "(recording's mean: floor)"}


def references(train: ArrayDataset, heldout: ArrayDataset) -> dict[str, np.ndarray]:
  """{name: [R, 64, 64]} of the reference levels: the word's mean training window (only when a
  held-out word is among the training words: otherwise it is the mean spectrogram) and each
  recording's own mean window (the floor of one prediction per recording)."""
  known = set(train.pair_keys) & set(heldout.pair_keys)
  levels = {"word_mean": word_mean_predictions(train, heldout)} if known else {}
  return levels | {"recording_mean": heldout.spectrograms.astype(np.float32).mean(axis=1)}


def predictions(train: ArrayDataset, heldout: ArrayDataset) -> dict[str, np.ndarray]:
  """{name: [R, 64, 64]} of every baseline."""
  return {"mean": mean_spectrogram(train, heldout),
          "nearest_neighbour": nearest_neighbour(train, heldout)}
