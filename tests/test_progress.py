"""The progress counter: one updating line on a terminal, a few whole lines in a log."""

import io

from cmri2spec_tf.base.progress import Progress


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_a_log_gets_a_line_per_quarter_without_carriage_returns():
  log = io.StringIO()
  progress = Progress("data", 63, stream=log)
  for i in range(63):
    progress.update(i + 1, "recordings")
  progress.close()
  lines = log.getvalue().splitlines()
  assert "\r" not in log.getvalue()
  assert lines == [f"data: {n}/63 recordings" for n in (16, 32, 47, 63)]


def test_a_terminal_gets_one_updating_line():
  screen = _Terminal()
  progress = Progress("data", 5, stream=screen)
  for i in range(5):
    progress.update(i + 1)
  progress.close()
  text = screen.getvalue()
  assert text.count("\r") == 5 and text.count("\n") == 1 and text.endswith("data: 5/5\n")


def test_a_single_item_still_shows():
  log = io.StringIO()
  progress = Progress("subjects", 1, stream=log)
  progress.update(1)
  assert log.getvalue() == "subjects: 1/1\n"
