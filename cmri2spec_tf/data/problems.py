"""Errors raised by the data layer: every one names the file and the problem."""

from __future__ import annotations

import dataclasses
import errno
import os


@dataclasses.dataclass(frozen=True)
class Problem:
  """One thing wrong with a dataset: the file it concerns and what is wrong."""

  path: str
  message: str

  def __str__(self) -> str:
    return f"{self.path}: {self.message}"


class DataError(ValueError):
  """A single input file cannot be used. `str()` reads `PATH: MESSAGE`."""

  def __init__(self, path: str | os.PathLike, message: str):
    self.problem = Problem(os.fspath(path), message)
    super().__init__(str(self.problem))


class DatasetProblems(ValueError):
  """A dataset has one or more problems; raised before any training starts."""

  def __init__(self, problems: list[Problem]):
    self.problems = list(problems)
    lines = [f"dataset has {len(self.problems)} problem(s):"]
    lines += [f"  - {p}" for p in self.problems]
    super().__init__("\n".join(lines))


def read_every(items, read) -> list:
  """[read(item) for item in items], reading every item even after a failure; DatasetProblems
  listing every item whose read raised DataError."""
  results, problems = [], []
  for item in items:
    try:
      results.append(read(item))
    except DataError as e:
      problems.append(e.problem)
  if problems:
    raise DatasetProblems(problems)
  return results


def not_found(path: str | os.PathLike, what: str) -> DataError:
  """The error for a file or folder that cannot be opened: missing, a dangling symbolic link, or
  a symbolic link loop."""
  path = os.fspath(path)
  reason = "no such file or folder"
  if os.path.islink(path):
    try:
      os.stat(path)
    except OSError as e:
      reason = ("a symbolic link loop" if e.errno == errno.ELOOP
                else f"a symbolic link to {os.readlink(path)!r}, which does not exist")
  return DataError(path, f"{what} not found ({reason})")
