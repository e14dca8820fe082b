"""Cache (atomic, keyed by data and parameters), subject splits and the tf.data pair pipeline."""

import os
import shutil

import numpy as np
import pytest

from cmri2spec_tf.data import cache, dataset, pairs, splits
from cmri2spec_tf.data.spectrogram import SpecParams


@pytest.fixture()
def data_copy(tmp_path, phantom_dir):
  target = tmp_path / "data"
  shutil.copytree(phantom_dir, target)
  return str(target)


def _no_decoding(*args, **kwargs):
  raise AssertionError("decoded although the cache holds this recording")


def test_second_load_reads_the_cache_only(tmp_path, data_copy, monkeypatch):
  cache_dir = str(tmp_path / "cache")
  first = dataset.load_dataset(data_copy, cache_dir=cache_dir, verbose=False)
  assert first.mri.shape == (5, 26, 128, 128) and first.spectrograms.shape == (5, 100, 64, 64)
  assert first.mri.dtype == np.float16 and first.subject_ids == ["S01", "S02", "S03", "S04", "S05"]
  assert sorted(f.endswith(".npz") for f in os.listdir(cache_dir)) == [True] * 5
  monkeypatch.setattr(dataset, "read_record", _no_decoding)
  second = dataset.load_dataset(data_copy, cache_dir=cache_dir, verbose=False)
  np.testing.assert_array_equal(first.mri, second.mri)
  np.testing.assert_array_equal(first.spectrograms, second.spectrograms)
  # Decoded or read back, the same layout, so the same float32 sums (training's output bias
  # starts at the targets' mean: a first run and its rerun must start alike, bit for bit).
  for loaded in (first, second):
    assert loaded.mri.flags.c_contiguous and loaded.spectrograms.flags.c_contiguous
  means = [loaded.spectrograms.astype(np.float32).mean() for loaded in (first, second)]
  assert means[0].tobytes() == means[1].tobytes()
  # float16 storage costs at most half a step of float16 near 1.0
  record = dataset.manifest_lib.read_manifest(data_copy)[0][0]
  monkeypatch.undo()
  frames, targets, _ = dataset.read_record(record, SpecParams())
  assert np.max(np.abs(first.mri[0] - frames)) <= 2.5e-4
  assert np.max(np.abs(first.spectrograms[0] - targets)) <= 2.5e-4


def test_cache_key_follows_bytes_and_parameters(data_copy):
  mri, wav = f"{data_copy}/subjects/S01/mri", f"{data_copy}/subjects/S01/audio.wav"
  key = cache.record_key(mri, wav, SpecParams().to_json())
  assert key == cache.record_key(mri, wav, SpecParams().to_json())
  assert key != cache.record_key(mri, wav, SpecParams(db_min=-70.0).to_json())
  with open(wav, "r+b") as f:
    f.seek(-2, os.SEEK_END)
    f.write(b"\x01\x02")
  assert key != cache.record_key(mri, wav, SpecParams().to_json())


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
  def crash(src, dst):
    raise OSError("disk full")

  monkeypatch.setattr(os, "replace", crash)
  with pytest.raises(OSError):
    cache.save(str(tmp_path), "k", {"a": np.ones(3)})
  assert os.listdir(tmp_path) == []


def test_corrupt_entry_is_rebuilt(tmp_path, data_copy):
  cache_dir = str(tmp_path / "cache")
  first = dataset.load_dataset(data_copy, cache_dir=cache_dir, verbose=False)
  victim = os.path.join(cache_dir, sorted(os.listdir(cache_dir))[0])
  with open(victim, "r+b") as f:
    f.truncate(100)
  again = dataset.load_dataset(data_copy, cache_dir=cache_dir, verbose=False)
  np.testing.assert_array_equal(first.mri, again.mri)
  assert os.path.getsize(victim) > 100


# ------------------------------------------------------------------------ splits
def test_leave_one_subject_out():
  ids = [f"S{i}" for i in range(7)]
  folds = splits.leave_one_subject_out(ids)
  assert len(folds) == 7
  assert sorted(f.test[0] for f in folds) == sorted(ids)
  for fold in folds:
    assert len(fold.test) == 1 and not set(fold.test) & set(fold.train)
    assert set(fold.train) | set(fold.test) == set(ids)


def test_k_folds_disjoint_cover_and_stratified():
  ids = [f"S{i:02d}" for i in range(20)]
  words = ["ageese"] * 14 + ["asouk"] * 6
  folds = splits.make_folds(ids, words, "3", seed=1)
  assert len(folds) == 3
  held = [s for f in folds for s in f.test]
  assert sorted(held) == ids  # every subject held out exactly once
  for fold in folds:
    assert not set(fold.train) & set(fold.test)
    assert sum(words[ids.index(s)] == "asouk" for s in fold.test) == 2
  assert folds == splits.make_folds(ids, words, "3", seed=1)
  assert folds != splits.make_folds(ids, words, "3", seed=2)
  with pytest.raises(ValueError):
    splits.make_folds(ids, words, "one", seed=0)


# ------------------------------------------------------------------------ pairs
def test_sample_pairs_rules():
  ids = ["A", "B", "C", "D", "E", "F"]
  words = ["ageese", "ageese", "ageese", "asouk", "asouk", "asouk"]
  rng = np.random.default_rng(0)
  p = pairs.sample_pairs(ids, words, 100, 0.3, rng)
  assert p.shape == (600, 5)
  assert np.all(p[:, 0] != p[:, 2])  # different subjects (one recording each here)
  same = np.array(words)[p[:, 0]] == np.array(words)[p[:, 2]]
  np.testing.assert_array_equal(same, p[:, 4] == 1)
  assert abs(same.mean() - 0.3) < 0.06
  assert sorted(map(tuple, p[:, :2])) == [(r, k) for r in range(6) for k in range(100)]
  assert np.all((p[:, 3] >= 0) & (p[:, 3] < 100))
  assert not np.array_equal(p, pairs.sample_pairs(ids, words, 100, 0.3, np.random.default_rng(1)))


def test_sample_pairs_when_one_word_only_or_one_subject():
  p = pairs.sample_pairs(["A", "B"], ["x", "x"], 10, 0.0, np.random.default_rng(0))
  assert np.all(p[:, 4] == 1)  # no other word exists: same-word partners
  with pytest.raises(ValueError, match="2 different subjects"):
    pairs.sample_pairs(["A"], ["x"], 10, 0.5, np.random.default_rng(0))


def test_pairs_dataset_batches_and_new_pairs_each_epoch(tmp_path, phantom_dir):
  data = dataset.load_dataset(phantom_dir, cache_dir=str(tmp_path / "c"), verbose=False)
  ds = pairs.pairs_dataset(data, batch_size=8, same_word_share=0.5, seed=3)
  epoch1 = list(ds)
  first_of_epoch2 = next(iter(ds))  # each new iteration is the next epoch
  assert len(epoch1) == 500 // 8
  batch = epoch1[0]
  assert set(batch) == set(pairs.PAIR_KEYS)
  assert batch["mri_a"].shape == (8, 26, 128, 128, 1) and batch["mri_a"].dtype.name == "float32"
  assert batch["spec_b"].shape == (8, 64, 64, 1)
  assert not np.array_equal(epoch1[0]["spec_a"], first_of_epoch2["spec_a"])
  # The epoch-e pairs do not depend on where a run started (resume).
  resumed = next(iter(pairs.pairs_dataset(data, batch_size=8, same_word_share=0.5, seed=3,
                                          first_epoch=1)))
  np.testing.assert_array_equal(resumed["spec_a"], first_of_epoch2["spec_a"])
  # The data really is the recording's: a batch's spectrogram equals one of the stored windows.
  stored = data.spectrograms.reshape(-1, 64, 64).astype(np.float32)
  assert np.min(np.abs(stored - batch["spec_a"][0, ..., 0].numpy()).max(axis=(1, 2))) == 0


def test_examples_dataset_visits_every_window_once(tmp_path, phantom_dir):
  data = dataset.load_dataset(phantom_dir, cache_dir=str(tmp_path / "c"), verbose=False)
  subset = data.subset(["S02", "S05"])
  batches = list(pairs.examples_dataset(subset, batch_size=64))
  specs = np.concatenate([y.numpy() for _, y in batches])
  assert specs.shape == (200, 64, 64, 1)
  np.testing.assert_array_equal(specs[100:, ..., 0], subset.spectrograms[1].astype(np.float32))


def _squares_dataset() -> dataset.ArrayDataset:
  """4 recordings (2 subjects x 2 words), each a bright 8x8 square at its own place whose
  brightness grows frame by frame; window w of recording r is filled with (10 r + w) / 64."""
  mri = np.zeros((4, 26, 128, 128), np.float16)
  for r in range(4):
    mri[r, :, 40 + 10 * r:48 + 10 * r, 50:58] = (np.arange(26)[:, None, None] + 1) / 26
  windows = (10 * np.arange(4)[:, None] + np.arange(5)[None, :]) / 64
  spectrograms = np.broadcast_to(windows[..., None, None], (4, 5, 64, 64)).astype(np.float16)
  return dataset.ArrayDataset(["A", "A", "B", "B"], ["x", "y", "x", "y"], mri, spectrograms,
                              SpecParams())


def _centroid(image: np.ndarray) -> np.ndarray:
  rows, columns = np.mgrid[0:image.shape[0], 0:image.shape[1]]
  return np.array([(rows * image).sum(), (columns * image).sum()]) / image.sum()


def test_shift_augmentation_moves_each_clip_by_its_drawn_shift():
  data = _squares_dataset()
  plain = list(pairs.pairs_dataset(data, batch_size=4, seed=5))
  moved = list(pairs.pairs_dataset(data, batch_size=4, seed=5, shift_px=3.0))
  drawn_pairs, drawn_shifts = next(pairs._EpochPairs(data, 0.5, 5, 0, None, 3.0)())
  assert np.abs(drawn_shifts).max() <= 3.0 and np.abs(drawn_shifts).max() > 1.0
  for b, (plain_batch, moved_batch) in enumerate(zip(plain, moved)):
    # The same pairs and sounds as without augmentation; only the MRI moves.
    for key in ("spec_a", "spec_b", "same_word"):
      np.testing.assert_array_equal(plain_batch[key], moved_batch[key])
    for k in range(4):
      row = 4 * b + k
      for member, column in (("a", 0), ("b", 2)):  # the pair's and the shifts' columns
        original = data.mri[drawn_pairs[row, column]].astype(np.float32)
        np.testing.assert_array_equal(plain_batch[f"mri_{member}"][k, ..., 0], original)
        shifted = moved_batch[f"mri_{member}"][k, ..., 0].numpy()
        want = drawn_shifts[row, column:column + 2]
        for t in (0, 12, 25):  # every frame moves alike, its brightness kept
          np.testing.assert_allclose(_centroid(shifted[t]) - _centroid(original[t]), want,
                                     atol=0.02)
          np.testing.assert_allclose(shifted[t].sum(), original[t].sum(), rtol=1e-4)


def test_shift_augmentation_is_the_same_for_an_epoch_in_any_run():
  data = _squares_dataset()
  whole = pairs.pairs_dataset(data, batch_size=4, seed=2, shift_px=2.0)
  list(whole)
  second = list(whole)
  resumed = list(pairs.pairs_dataset(data, batch_size=4, seed=2, shift_px=2.0, first_epoch=1))
  for a, b in zip(second, resumed):
    np.testing.assert_array_equal(a["mri_a"], b["mri_a"])
    np.testing.assert_array_equal(a["mri_b"], b["mri_b"])
