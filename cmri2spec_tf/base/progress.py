"""A progress counter that suits where it is written: one updating line on a terminal, a few
whole lines (every quarter and the last) in a log file or CI, so that a log holds no run of
carriage returns."""

from __future__ import annotations

import sys


class Progress:
  """`update(done, detail)` after each of `total` items; `close()` ends the line on a terminal."""

  def __init__(self, label: str, total: int, stream=None, steps: int = 4):
    self.label, self.total = label, total
    self.stream = stream or sys.stderr
    self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
    # in a log: the counts at which a line is written (each quarter, and the last)
    self.marks = {max(1, round(total * k / steps)) for k in range(1, steps + 1)}
    self.open = False

  def update(self, done: int, detail: str = "") -> None:
    text = f"{self.label}: {done}/{self.total}" + (f" {detail}" if detail else "")
    if self.terminal:
      print("\r" + text, end="", file=self.stream, flush=True)
      self.open = True
    elif done in self.marks:
      print(text, file=self.stream, flush=True)

  def close(self) -> None:
    if self.open:
      print(file=self.stream, flush=True)
      self.open = False
