"""Subject-level splits: leave-one-subject-out (the paper, Sec. 3.2) and k folds by subject.

No subject is ever on both sides of a fold. K folds are stratified by word: subjects of each
word are shuffled with the seed and dealt round-robin, so every fold sees both words when it can.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from cmri2spec_tf.base.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Fold:
  """Training and held-out subject ids of one fold."""

  index: int
  train: tuple[str, ...]
  test: tuple[str, ...]


def leave_one_subject_out(subject_ids) -> list[Fold]:
  """One fold per subject, in sorted subject order; that subject is the held-out side."""
  subjects = sorted(set(subject_ids))
  if len(subjects) < 2:
    raise ConfigError(f"leave-one-subject-out needs at least 2 subjects, got {len(subjects)}")
  return [Fold(i, tuple(s for s in subjects if s != held), (held,))
          for i, held in enumerate(subjects)]


def k_folds(subject_ids, words, k: int, seed: int = 0) -> list[Fold]:
  """k folds of subjects, stratified by word, deterministic for a seed."""
  word_of = dict(zip(subject_ids, words))
  subjects = sorted(word_of)
  if not 2 <= k <= len(subjects):
    raise ConfigError(f"--split={k}: the number of folds must be between 2 and the number of "
                      f"subjects ({len(subjects)})")
  dealt = itertools.chain.from_iterable(_shuffled_by_word(word_of, np.random.default_rng(seed)))
  assignment = {s: i % k for i, s in enumerate(dealt)}
  return [Fold(i, tuple(s for s in subjects if assignment[s] != i),
               tuple(s for s in subjects if assignment[s] == i)) for i in range(k)]


def make_folds(subject_ids, words, scheme: str, seed: int = 0) -> list[Fold]:
  """`scheme` is "loso" or the number of folds ("5")."""
  if scheme == "loso":
    return leave_one_subject_out(subject_ids)
  try:
    k = int(scheme)
  except ValueError:
    raise ConfigError(f"--split={scheme}: must be 'loso' or a number of folds") from None
  return k_folds(subject_ids, words, k, seed)


def select_fold(subject_ids, words, scheme: str, index: int, seed: int = 0) -> Fold:
  """Fold `index` of `make_folds`; ConfigError naming the folds there are."""
  folds = make_folds(subject_ids, words, scheme, seed)
  if not 0 <= index < len(folds):
    raise ConfigError(f"--fold={index}: split {scheme!r} of this dataset has {len(folds)} "
                      f"folds (0-{len(folds) - 1})")
  return folds[index]


def selection_subjects(subject_ids, words, k: int, seed: int = 0) -> tuple[str, ...]:
  """`k` of the training subjects set aside to choose the epoch on (`--selection_subjects`),
  stratified by word like `k_folds` (each word's subjects shuffled with the seed, the words
  dealt in turn), deterministic for a seed; sorted. They must leave training at least 2."""
  word_of = dict(zip(subject_ids, words))
  subjects = sorted(word_of)
  if not 1 <= k <= len(subjects) - 2:
    raise ConfigError(f"--selection_subjects={k}: must be between 1 and the number of training "
                      f"subjects less 2 ({len(subjects) - 2})")
  groups = _shuffled_by_word(word_of, np.random.default_rng([seed, k]))
  dealt = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
  return tuple(sorted(dealt[:k]))


def _shuffled_by_word(word_of: dict, rng) -> list[list[str]]:
  """Each word's subjects (words and subjects in sorted order), shuffled by `rng`."""
  subjects = sorted(word_of)
  return [[str(s) for s in rng.permutation([s for s in subjects if word_of[s] == word])]
          for word in sorted(set(word_of.values()))]
