"""The `explain` command's work: attribution maps and articulator occlusion (attribution.py) for
one MRI source or for every held-out recording of a run, written as files, TensorBoard images
and the strips report.html shows.

  DIR/<example>/strip.png        the 26 frames with the whole-spectrogram attribution overlaid
  DIR/<example>/animation.gif    the same as an animation
  DIR/<example>/maps.npz         every target's map, float16 [26, 128, 128], and the input
  DIR/<example>/shares.csv       attribution share vs area share per target and articulator
  DIR/<example>/occlusion.csv    (with masks) the prediction's change per articulator and band
  DIR/summary.md, summary.csv    the means over the examples, both tables
  RUN/explain/<subject>.png      the strip of each held-out subject's first recording, which
                                 `evaluate` puts into report.html beside that subject's audio
  RUN/logs/explain/              the strips in TensorBoard (explain/<example>)

Masks are found beside the MRI: a cine subject's `masks.npz` next to its series folder, a
video's or array's `<stem>_masks.npz` next to it (what the phantom writes), or given with
--masks for a single source.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from cmri2spec_tf.base import atomic
from cmri2spec_tf.base.progress import Progress
from cmri2spec_tf.evaluation import attribution
from cmri2spec_tf.training import runs


@dataclasses.dataclass
class Example:
  name: str
  subject_id: str
  mri: np.ndarray  # [26, 128, 128]
  masks: attribution.Masks | None


def masks_beside(entry: str, times: np.ndarray | None) -> attribution.Masks | None:
  """The masks the phantom writes beside an MRI source, read for its 26 model frames (None
  where there are none)."""
  path = entry.split(".h5:")[0].rstrip(os.sep)
  folder, name = os.path.split(path)
  for candidate in (os.path.join(folder, os.path.splitext(name)[0] + "_masks.npz"),
                    os.path.join(folder, "masks.npz")):
    if os.path.isfile(candidate):
      return attribution.read_masks(candidate, times)
  return None


def model_frame_times(cine, segment) -> np.ndarray | None:
  """The times of the 26 model frames on the recording's clock (None for a DICOM cine)."""
  if segment is not None:
    return np.linspace(segment[0], segment[1], 26)
  if cine.info.start_s is None or cine.info.duration_s is None:
    return None
  period = 1.0 / cine.info.frame_rate if cine.info.frame_rate else 0.0
  return np.linspace(cine.info.start_s, cine.info.start_s + cine.info.duration_s - period, 26)


def single_example(entry: str, masks_path: str | None, frame_rate: float | None) -> Example:
  from cmri2spec_tf.data import sources

  cine = sources.read_mri(entry, frame_rate)
  times = model_frame_times(cine, None)
  masks = (attribution.read_masks(masks_path, times) if masks_path
           else masks_beside(entry, times))
  name = _safe(os.path.splitext(os.path.basename(entry.rstrip(os.sep)))[0])
  return Example(name, name, cine.frames, masks)


def heldout_examples(model_dir: str, data_dir: str | None, limit: int | None) -> list[Example]:
  """Every held-out recording of the run's fold (the first `limit`), with masks where the
  dataset has them."""
  from cmri2spec_tf.data import manifest, sources, splits

  config = runs.load_config(model_dir)
  records, problems = manifest.read_manifest(data_dir or config.data_dir)
  if problems:
    from cmri2spec_tf.data.problems import DatasetProblems

    raise DatasetProblems(problems)
  fold = splits.select_fold([r.subject_id for r in records], [r.word for r in records],
                            config.split, config.fold, config.split_seed)
  held = [r for r in records if r.subject_id in set(fold.test)][:limit]
  examples = []
  for record in held:
    cine = sources.read_mri(record.mri, record.frame_rate, record.segment)
    masks = masks_beside(record.mri, model_frame_times(cine, record.segment))
    examples.append(Example(_safe(record.recording_id), record.subject_id, cine.frames, masks))
  return examples


def explain(model_dir: str, out_dir: str, examples: list[Example], weights: str = "best",
            steps: int = attribution.STEPS, verbose: bool = True) -> dict:
  """Maps, shares and occlusion of every example into out_dir; strips into the run folder and
  TensorBoard. Returns the summary (also summary.md / summary.csv)."""
  translator, params, _ = runs.load_translator(model_dir, weights, precision="float32")
  predict = lambda batch: np.asarray(translator.predict_on_batch(batch[..., None]))[..., 0]
  targets = attribution.target_masks(params)
  progress = Progress("explained", len(examples)) if verbose else None
  shares, occlusions, strips = [], [], {}
  for k, example in enumerate(examples):
    maps = attribution.integrated_gradients(translator, example.mri, targets, steps)
    folder = os.path.join(out_dir, example.name)
    strip = attribution.strip_png(example.mri, maps["all"])
    atomic.write_bytes(os.path.join(folder, "strip.png"), strip)
    atomic.write_bytes(os.path.join(folder, "animation.gif"),
                       attribution.animation_gif(example.mri, maps["all"]))
    _write_npz(os.path.join(folder, "maps.npz"), maps, example.mri)
    strips.setdefault(example.subject_id, strip)
    if example.masks is not None:
      rows = [{"example": example.name} | r for r in
              attribution.attribution_shares(maps, example.masks)]
      occlusion = [{"example": example.name} | r for r in
                   attribution.occlusion_table(predict, example.mri, example.masks, params)]
      atomic.write_text(os.path.join(folder, "shares.csv"), attribution.csv_text(rows))
      atomic.write_text(os.path.join(folder, "occlusion.csv"), attribution.csv_text(occlusion))
      shares += rows
      occlusions += occlusion
    if progress:
      progress.update(k + 1, example.name)
  if progress:
    progress.close()
  _write_run_strips(model_dir, strips)
  return write_summary(out_dir, shares, occlusions, len(examples), steps)


def write_summary(out_dir: str, shares: list[dict], occlusions: list[dict], n: int,
                  steps: int) -> dict:
  """Means over the examples: shares per target and region, occlusion per articulator."""
  share_means = _means(shares, ("target", "region"))
  occlusion_means = _means(occlusions, ("articulator",))
  text = (f"# Attribution and occlusion ({n} example(s), integrated gradients, {steps} steps, "
          "all-zero baseline)\n\n## Attribution share vs area share\n\n"
          + attribution.markdown_table(share_means)
          + "\n## Occlusion: mean |change| of the prediction (normalized units and dB)\n\n"
          + attribution.markdown_table(occlusion_means))
  atomic.write_text(os.path.join(out_dir, "summary.md"), text)
  atomic.write_text(os.path.join(out_dir, "summary.csv"), attribution.csv_text(share_means))
  if occlusion_means:
    atomic.write_text(os.path.join(out_dir, "occlusion.csv"),
                      attribution.csv_text(occlusion_means))
  return {"examples": n, "shares": share_means, "occlusion": occlusion_means}


def format_summary(summary: dict) -> str:
  """What the command prints: the articulators' attribution share against their area share per
  output target, and the occlusion table."""
  lines = []
  together = [r for r in summary["shares"] if r["region"] == "all articulators"]
  if together:
    lines.append("attribution on the articulators (share of |map|) vs their share of the image:")
    lines += [f"  {r['target']:<13} {r['attribution_share']:.3f} vs {r['area_share']:.3f}"
              for r in together]
  else:
    lines.append("no articulator masks found: maps only (give --masks)")
  if summary["occlusion"]:
    lines.append("occlusion, mean |change| in dB (all / <1 kHz / 1-3 kHz / >4 kHz):")
    lines += [f"  {r['articulator']:<13} {r['db_all']:6.2f} {r['db_below_1khz']:6.2f} "
              f"{r['db_1_3khz']:6.2f} {r['db_above_4khz']:6.2f}" for r in summary["occlusion"]]
  return "\n".join(lines)


def _means(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
  groups = {}
  for row in rows:
    groups.setdefault(tuple(row[k] for k in keys), []).append(row)
  out = []
  for key, members in groups.items():
    numbers = [c for c in members[0] if c not in keys and c != "example"]
    out.append(dict(zip(keys, key)) | {c: float(np.mean([m[c] for m in members]))
                                        for c in numbers})
  return out


def _write_npz(path: str, maps: dict[str, np.ndarray], mri: np.ndarray) -> None:
  import io

  buffer = io.BytesIO()
  np.savez_compressed(buffer, mri=mri.astype(np.float16),
                      **{name: m.astype(np.float16) for name, m in maps.items()})
  atomic.write_bytes(path, buffer.getvalue())


def _write_run_strips(model_dir: str, strips: dict[str, bytes]) -> None:
  """RUN/explain/<subject>.png for report.html, and the strips as TensorBoard images."""
  import tensorflow as tf

  for subject, png in strips.items():
    atomic.write_bytes(runs.explain_strip(model_dir, subject), png)
  writer = tf.summary.create_file_writer(os.path.join(runs.path(model_dir, runs.LOGS), "explain"))
  with writer.as_default():
    for subject, png in strips.items():
      tf.summary.image(f"explain/{subject}", tf.io.decode_png(png)[None], step=0)
  writer.close()


def _safe(name: str) -> str:
  """A file-name-safe version of an example's id."""
  return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("_") or "example"
