"""Spectrogram figures with real axes: time in seconds, frequency in Hz reading bottom-up."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cmri2spec_tf.base import numba_cache  # noqa: E402
from cmri2spec_tf.data.spectrogram import SpecParams  # noqa: E402


def _frequency_ticks(params: SpecParams, n_ticks: int = 6):
  librosa = numba_cache.librosa()
  centres = librosa.mel_frequencies(params.n_mels + 2, fmin=params.fmin, fmax=params.fmax)[1:-1]
  rows = np.linspace(0, params.n_mels - 1, n_ticks).round().astype(int)
  return rows, [f"{centres[r] / 1000:.1f}k" if centres[r] >= 1000 else f"{centres[r]:.0f}"
                for r in rows]


def spectrogram_row_png(panels: dict[str, np.ndarray], params: SpecParams = SpecParams(),
                        title: str = "", error_scale: float = 0.5,
                        seconds: float | None = None) -> bytes:
  """One row of panels (name -> normalized [64, 64], or [64, N] of `seconds`); names with
  'error' use their own scale."""
  return spectrogram_grid_png([(title, panels)], params, error_scale, seconds)


def spectrogram_grid_png(rows: list[tuple[str, dict[str, np.ndarray]]],
                         params: SpecParams = SpecParams(), error_scale: float = 0.5,
                         seconds: float | None = None) -> bytes:
  """Rows of (title, panels); every row has the same number of panels. `seconds`: the panels'
  duration (default one window's); longer ones get wider panels."""
  seconds = seconds or params.window_samples / params.sample_rate
  n_cols = len(rows[0][1])
  panel_width = 3.2 * min(6.0, max(1.0, seconds / 1.5))
  fig, axes = plt.subplots(len(rows), n_cols, figsize=(panel_width * n_cols, 3.0 * len(rows)),
                           squeeze=False)
  ticks, labels = _frequency_ticks(params)
  for axes_row, (title, panels) in zip(axes, rows):
    for ax, (name, values) in zip(axes_row, panels.items()):
      is_error = "error" in name
      image = ax.imshow(np.asarray(values).reshape(params.n_mels, -1), origin="lower",
                        aspect="auto", cmap="inferno" if is_error else "magma",
                        vmin=0, vmax=error_scale if is_error else 1,
                        extent=(0, seconds, -0.5, params.n_mels - 0.5))
      ax.set_title(name, fontsize=9)
      ax.set_xlabel("time (s)", fontsize=8)
      ax.set_yticks(ticks, labels, fontsize=7)
      ax.tick_params(axis="x", labelsize=7)
      fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
    axes_row[0].set_ylabel("frequency (Hz, mel scale)", fontsize=8)
    if title:
      axes_row[0].annotate(title, (0, 1.18), xycoords="axes fraction", fontsize=9)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=80)
  plt.close(fig)
  return buffer.getvalue()
