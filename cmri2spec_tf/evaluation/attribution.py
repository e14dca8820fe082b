"""Where in the images a translator's speech comes from: attribution maps and articulator
occlusion (the `explain` command; `cmri2spec_tf.load(run).explain(mri)`).

Attribution is integrated gradients (Sundararajan et al., ICML 2017): for an output quantity F
(the sum of the predicted spectrogram over a set of its pixels), the map is
(x - x0) * mean over k of dF/dx at x0 + (k - 0.5) / m * (x - x0), k = 1..m (the midpoint
Riemann sum of the path integral; m = `steps`, 32 by default); its sum over the input equals
F(x) - F(x0) up to the sum's error (the completeness axiom; `completeness_error`). Chosen over
Grad-CAM because it attributes to input pixels, not to a coarse feature map, and its total is
the output change it explains. The baseline x0 is an all-zero sequence: no MR signal, what the
input shows in air, the one image that holds no articulator.

Output quantities (TARGETS): the whole spectrogram; three band groups of mel rows by their
centre frequency, < 1 kHz (voicing and F1), 1-3 kHz (F2 and F3), > 4 kHz (frication); and the
three thirds of its time axis.

Occlusion: one articulator's pixels (a label map per frame: the phantom's masks.npz, or a user's
in the same layout) are set in all 26 frames to the frame's mean over pixels labelled "other
tissue" (soft tissue: the articulator is replaced by what surrounds it, not by a hole of air);
where the legend has no such label, to the frame's median outside every articulator. The change
of the prediction is reported per band group, as the mean |change| of the normalized
spectrogram (L1) and of its dB values.

Shares: the share of attribution mass (sum of |map|) on each articulator's pixels against that
articulator's share of the image area, per target. A model that uses an articulator puts more
than its area share there.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cmri2spec_tf.base import numba_cache
from cmri2spec_tf.data.spectrogram import SpecParams, normalized_to_db

BANDS_HZ = {"below_1khz": (0.0, 1000.0), "1_3khz": (1000.0, 3000.0),
            "above_4khz": (4000.0, float("inf"))}
THIRDS = ("first_third", "middle_third", "last_third")
STEPS = 32
BATCH = 8
OTHER_TISSUE = "other tissue"
BACKGROUND = "air and background"


def target_masks(params: SpecParams = SpecParams()) -> dict[str, np.ndarray]:
  """{name: bool [64, 64]}: the spectrogram pixels (mel rows x frames) each quantity sums."""
  librosa = numba_cache.librosa()

  centres = librosa.mel_frequencies(params.n_mels + 2, fmin=params.fmin, fmax=params.fmax)[1:-1]
  frames = 64
  masks = {"all": np.ones((params.n_mels, frames), bool)}
  for name, (low, high) in BANDS_HZ.items():
    rows = (centres >= low) & (centres < high)
    masks[name] = np.repeat(rows[:, None], frames, axis=1)
  edges = np.linspace(0, frames, 4).round().astype(int)
  for k, name in enumerate(THIRDS):
    mask = np.zeros((params.n_mels, frames), bool)
    mask[:, edges[k]:edges[k + 1]] = True
    masks[name] = mask
  return masks


def integrated_gradients(model, mri: np.ndarray, targets: dict[str, np.ndarray],
                         steps: int = STEPS, batch: int = BATCH) -> dict[str, np.ndarray]:
  """{target: float32 [26, 128, 128]} maps of one sequence mri [26, 128, 128] in [0, 1] for a
  Keras model MRI [B, 26, 128, 128, 1] -> spectrogram [B, 64, 64, 1]. One forward pass per batch
  of path points serves every target (a persistent tape, in one compiled function)."""
  import tensorflow as tf

  names = list(targets)
  weights = tf.constant(np.stack([targets[n] for n in names]).astype(np.float32)[..., None])
  gradients = _gradient_function(model)
  x = np.asarray(mri, np.float32)[None, ..., None]
  alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
  total = np.zeros((len(names), *x.shape[1:]), np.float64)
  for start in range(0, steps, batch):
    points = tf.constant(alphas[start:start + batch, None, None, None, None] * x)
    total += gradients(points, weights).numpy()
  maps = np.asarray(mri, np.float32)[None] * (total[..., 0] / steps)
  return {name: maps[k].astype(np.float32) for k, name in enumerate(names)}


def _gradient_function(model):
  """A tf.function (cached on the model): points [B, 26, 128, 128, 1], target weights
  [T, 64, 64, 1] -> [T, 26, 128, 128, 1], each target's gradient summed over the points."""
  import tensorflow as tf

  cached = getattr(model, "_cmri2spec_ig", None)
  if cached is not None:
    return cached

  @tf.function(reduce_retracing=True)
  def gradients(points, weights):
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(points)
      prediction = tf.cast(model(points, training=False), tf.float32)
      outputs = [tf.reduce_sum(prediction * weights[k]) for k in range(weights.shape[0])]
    return tf.stack([tf.reduce_sum(tape.gradient(o, points), axis=0) for o in outputs])

  model._cmri2spec_ig = gradients
  return gradients


def completeness_error(model, mri: np.ndarray, maps: dict[str, np.ndarray],
                       targets: dict[str, np.ndarray]) -> dict[str, float]:
  """|sum(map) - (F(x) - F(0))| / |F(x) - F(0)| per target: how well `steps` approximated the
  path integral."""
  both = np.stack([np.asarray(mri, np.float32), np.zeros_like(mri, np.float32)])[..., None]
  prediction = np.asarray(model(both, training=False), np.float32)[..., 0]
  out = {}
  for name, mask in targets.items():
    change = float((prediction[0] * mask).sum() - (prediction[1] * mask).sum())
    out[name] = abs(float(maps[name].sum()) - change) / max(abs(change), 1e-9)
  return out


# ------------------------------------------------------------------ articulator masks
@dataclasses.dataclass(frozen=True)
class Masks:
  """Label maps on the model's input grid: `labels` uint8 [26, 128, 128] and their legend."""

  labels: np.ndarray
  legend: dict[int, str]

  @property
  def articulators(self) -> dict[str, int]:
    """{name: label} of every labelled structure but air and other tissue."""
    return {name: k for k, name in self.legend.items()
            if name not in (BACKGROUND, OTHER_TISSUE)}


def parse_legend(text: str) -> dict[int, str]:
  """"0=air and background;1=tongue;..." -> {0: "air and background", 1: "tongue", ...}."""
  pairs = (item.split("=", 1) for item in str(text).split(";") if "=" in item)
  return {int(k): v.strip() for k, v in pairs}


def read_masks(path: str, times: np.ndarray | None = None) -> Masks:
  """A masks.npz (`labels` [frames, 128, 128] uint8, `legend`, optional `fps`). With `times`
  (seconds of the 26 model frames on the recording's clock) and `fps`, each model frame takes
  the label map of the frame nearest its time; else the frames are taken evenly by index (a
  cine series' 26 frames are the model's own)."""
  from cmri2spec_tf.data.problems import DataError

  try:
    with np.load(path, allow_pickle=False) as stored:
      labels, legend = stored["labels"], parse_legend(stored["legend"])
      fps = float(np.asarray(stored["fps"]).reshape(-1)[0]) if "fps" in stored.files else None
  except (OSError, KeyError, ValueError) as e:
    raise DataError(path, f"unreadable masks file ({type(e).__name__}: {e}); expected `labels` "
                    "uint8 [frames, 128, 128] and `legend`") from e
  if labels.ndim != 3 or labels.shape[1:] != (128, 128):
    raise DataError(path, f"labels of shape {labels.shape}: expected [frames, 128, 128] on the "
                    "model's pixel grid")
  if times is not None and fps:
    index = np.clip(np.round(np.asarray(times) * fps).astype(int), 0, len(labels) - 1)
  else:
    index = np.round(np.linspace(0, len(labels) - 1, 26)).astype(int)
  return Masks(labels[index], legend)


def occlude(mri: np.ndarray, masks: Masks, label: int) -> np.ndarray:
  """mri [26, 128, 128] with one label's pixels replaced, frame by frame, by the frame's mean
  "other tissue" intensity (else its median outside every articulator)."""
  out = np.array(mri, np.float32, copy=True)
  tissue = next((k for k, name in masks.legend.items() if name == OTHER_TISSUE), None)
  articulators = np.isin(masks.labels, list(masks.articulators.values()))
  for t in range(out.shape[0]):
    fill_from = masks.labels[t] == tissue if tissue is not None else ~articulators[t]
    if not fill_from.any():
      fill_from = ~articulators[t]
    out[t][masks.labels[t] == label] = (out[t][fill_from].mean() if tissue is not None
                                        else np.median(out[t][fill_from]))
  return out


def occlusion_table(predict, mri: np.ndarray, masks: Masks, params: SpecParams
                    ) -> list[dict]:
  """One row per articulator: the mean |change| of the prediction per band group (and over
  all of it), in normalized units (l1_*) and in dB (db_*). `predict`: [B, 26, 128, 128] ->
  [B, 64, 64]."""
  names = list(masks.articulators)
  batch = np.stack([mri] + [occlude(mri, masks, masks.articulators[n]) for n in names])
  predictions = np.asarray(predict(batch), np.float32).reshape(len(batch), 64, 64)
  decibels = normalized_to_db(predictions, params)
  bands = {"all": np.ones((64, 64), bool)} | {
      name: mask for name, mask in target_masks(params).items() if name in BANDS_HZ}
  rows = []
  for k, name in enumerate(names, start=1):
    row = {"articulator": name}
    for band, mask in bands.items():
      row[f"l1_{band}"] = float(np.abs(predictions[k] - predictions[0])[mask].mean())
      row[f"db_{band}"] = float(np.abs(decibels[k] - decibels[0])[mask].mean())
    rows.append(row)
  return rows


def attribution_shares(maps: dict[str, np.ndarray], masks: Masks) -> list[dict]:
  """Per target and articulator: its share of the attribution mass (sum |map|) and of the
  image area (pixels over all 26 frames); and all articulators together."""
  rows = []
  regions = dict(masks.articulators) | {"all articulators": None}
  for target, attribution in maps.items():
    mass = np.abs(attribution)
    total = float(mass.sum()) or 1.0
    for name, label in regions.items():
      inside = (np.isin(masks.labels, list(masks.articulators.values())) if label is None
                else masks.labels == label)
      rows.append({"target": target, "region": name,
                   "attribution_share": float(mass[inside].sum()) / total,
                   "area_share": float(inside.mean())})
  return rows


# ------------------------------------------------------------------ pictures
def overlay(frame: np.ndarray, attribution: np.ndarray, scale: float) -> np.ndarray:
  """uint8 RGB [128, 128, 3]: the grey frame with |attribution| / scale as a red-yellow heat
  layer (transparent where it is small)."""
  heat = np.clip(np.abs(attribution) / (scale or 1.0), 0, 1)[..., None]
  grey = np.repeat(np.clip(frame, 0, 1)[..., None], 3, axis=2)
  colour = np.stack([np.ones_like(heat[..., 0]), np.clip(2 * heat[..., 0] - 0.5, 0, 1),
                     np.zeros_like(heat[..., 0])], axis=-1)
  alpha = np.clip(heat * 1.5, 0, 0.85)
  return np.round(255 * (grey * (1 - alpha) + colour * alpha)).astype(np.uint8)


def strip_png(mri: np.ndarray, attribution: np.ndarray, columns: int = 13) -> bytes:
  """PNG of all 26 frames with the attribution overlaid, in rows of `columns` (time runs left to
  right, then down); one colour scale for the whole strip (the 99.5th percentile of |map|)."""
  import io

  from PIL import Image

  scale = float(np.percentile(np.abs(attribution), 99.5))
  tiles = [overlay(mri[t], attribution[t], scale) for t in range(mri.shape[0])]
  rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
  out = io.BytesIO()
  Image.fromarray(np.concatenate(rows, axis=0)).save(out, format="PNG")
  return out.getvalue()


def animation_gif(mri: np.ndarray, attribution: np.ndarray, frame_ms: int = 120) -> bytes:
  """An animated GIF of the 26 frames with the attribution overlaid (scaled x2), looping."""
  import io

  from PIL import Image

  scale = float(np.percentile(np.abs(attribution), 99.5))
  images = [Image.fromarray(overlay(mri[t], attribution[t], scale)).resize((256, 256))
            for t in range(mri.shape[0])]
  out = io.BytesIO()
  images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms,
                 loop=0)
  return out.getvalue()


def markdown_table(rows: list[dict], digits: int = 4) -> str:
  """Rows of dicts as a Markdown table (numbers rounded)."""
  if not rows:
    return ""
  keys = list(rows[0])
  cell = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)
  lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
  lines += ["| " + " | ".join(cell(r[k]) for k in keys) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
  import csv
  import io

  out = io.StringIO()
  if rows:
    writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
  return out.getvalue()
