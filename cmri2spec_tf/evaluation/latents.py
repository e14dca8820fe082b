"""Pictures of the encoder's latent space: every recording of a fold encoded into s and mu (= w
at inference), their first two principal components, mu coloured by word and s by F0 (by
subject when the dataset has no factors). `probe` and `evaluate` write it as latent.png;
training shows it in TensorBoard (latent/pca).
"""

from __future__ import annotations

import dataclasses

import numpy as np


def encode(encoder, mri: np.ndarray, batch_size: int = 8) -> dict[str, np.ndarray]:
  """{"mu": [R, 224], "s": [R, 224]} of MRI [R, 26, 128, 128] through the encoder."""
  from cmri2spec_tf.models.translator import split_latent

  parts = {"mu": [], "s": []}
  for i in range(0, len(mri), batch_size):
    s, mu, _ = split_latent(encoder(mri[i:i + batch_size].astype(np.float32)[..., None],
                                    training=False))
    parts["mu"].append(np.asarray(mu, np.float32).reshape(len(mu), -1))
    parts["s"].append(np.asarray(s, np.float32).reshape(len(s), -1))
  return {k: np.concatenate(v) for k, v in parts.items()}


def latent_png(latents: dict[str, np.ndarray], words: list[str], colour_values, colour_name,
               title: str) -> bytes:
  """Two panels: PCA of mu coloured by word, PCA of s coloured by `colour_values`."""
  import io

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from sklearn.decomposition import PCA

  figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
  mu = PCA(2).fit_transform(latents["mu"])
  for word in sorted(set(words)):
    picks = [i for i, w in enumerate(words) if w == word]
    axes[0].scatter(mu[picks, 0], mu[picks, 1], s=18, label=word)
  axes[0].legend()
  axes[0].set_title("mu (= w at inference), by word")
  s = PCA(2).fit_transform(latents["s"])
  points = axes[1].scatter(s[:, 0], s[:, 1], s=18, c=colour_values, cmap="viridis")
  figure.colorbar(points, ax=axes[1], label=colour_name)
  axes[1].set_title(f"s, by {colour_name}")
  for axis in axes:
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
  figure.suptitle(title)
  figure.tight_layout()
  out = io.BytesIO()
  figure.savefig(out, format="png", dpi=90)
  plt.close(figure)
  return out.getvalue()


@dataclasses.dataclass(frozen=True)
class LatentInputs:
  """What a latent picture shows: every recording's MRI, its word, its colour (F0 or subject)."""

  mri: np.ndarray
  words: list[str]
  colours: list[float]
  colour_name: str


def latent_inputs(train, heldout, known: dict | None) -> LatentInputs:
  """Every recording of the fold, s coloured by F0 when the factors are known, else by subject
  (its index in sorted order)."""
  subjects = train.subject_ids + heldout.subject_ids
  if known is not None and all(known.get(s, {}).get("f0_hz") is not None for s in subjects):
    colours, name = [known[s]["f0_hz"] for s in subjects], "F0 (Hz)"
  else:
    order = {s: i for i, s in enumerate(sorted(set(subjects)))}
    colours, name = [float(order[s]) for s in subjects], "subject"
  return LatentInputs(np.concatenate([train.mri, heldout.mri]), train.words + heldout.words,
                      colours, name)


def write_latent_view(model_dir: str, latents: dict, train, heldout, known: dict | None,
                      title: str) -> None:
  """latent.png of every recording of the fold (`latent_inputs`)."""
  from cmri2spec_tf.base import atomic
  from cmri2spec_tf.training import runs

  everyone = {k: np.concatenate([latents["train"][k], latents["heldout"][k]]) for k in ("mu", "s")}
  inputs = latent_inputs(train, heldout, known)
  atomic.write_bytes(runs.path(model_dir, runs.LATENT_PNG),
                     latent_png(everyone, inputs.words, inputs.colours, inputs.colour_name,
                                f"{title}: every recording of the fold"))


def latent_view_of_run(model_dir: str, trainer, train, heldout, data_dir: str, title: str) -> bool:
  """latent.png for a run whose trainer has an encoder (evaluate calls it); False without one."""
  from cmri2spec_tf.data import factors as factors_lib

  encoder = getattr(trainer, "encoder", None)
  if encoder is None:
    return False
  latents = {"train": encode(encoder, train.mri), "heldout": encode(encoder, heldout.mri)}
  write_latent_view(model_dir, latents, train, heldout, factors_lib.read_factors(data_dir), title)
  return True
