"""Which articulators make which sound: attribution maps and articulator occlusion, checked on a
model whose answer is known, on the phantom's masks, and end to end on the smoke run."""

import json
import os
import sys

import keras
import numpy as np
import pytest

from cmri2spec_tf.evaluation import attribution, listening
from cmri2spec_tf.synthetic import phantom
from tests.conftest import REPO
from tests import launcher

PATCH = (slice(40, 60), slice(70, 90))  # rows, columns the hand-built model reads


def _patch_model():
  """MRI [B, 26, 128, 128, 1] -> [B, 64, 64, 1] that provably reads only PATCH (of every frame)."""
  inputs = keras.Input((26, 128, 128, 1))
  patch = keras.layers.Lambda(lambda x: x[:, :, PATCH[0], PATCH[1], :])(inputs)
  hidden = keras.layers.Dense(4096, kernel_initializer=keras.initializers.RandomNormal(
      stddev=0.02, seed=1))(keras.layers.Flatten()(patch))
  outputs = keras.layers.Reshape((64, 64, 1))(keras.activations.sigmoid(hidden))
  return keras.Model(inputs, outputs)


def _masks():
  """Label 1 on PATCH, label 2 on a region of the same size elsewhere, 7 (tissue) around."""
  labels = np.full((26, 128, 128), 7, np.uint8)
  labels[:, PATCH[0], PATCH[1]] = 1
  labels[:, 90:110, 10:30] = 2
  return attribution.Masks(labels, {0: "air and background", 1: "inside", 2: "outside",
                                    7: "other tissue"})


def test_attribution_falls_where_a_model_provably_looks_and_only_there():
  model = _patch_model()
  mri = np.random.default_rng(0).uniform(0.2, 1.0, (26, 128, 128)).astype(np.float32)
  targets = attribution.target_masks()
  maps = attribution.integrated_gradients(model, mri, targets, steps=16)
  masks = _masks()
  shares = {(r["target"], r["region"]): r for r in attribution.attribution_shares(maps, masks)}
  for target in targets:
    assert shares[(target, "inside")]["attribution_share"] > 0.9, target
    assert shares[(target, "outside")]["attribution_share"] < 0.01, target
  assert shares[("all", "inside")]["area_share"] == pytest.approx(400 / 128 ** 2)
  errors = attribution.completeness_error(model, mri, maps, targets)
  assert max(errors.values()) < 0.02, errors  # the maps add up to the output change
  predict = lambda batch: np.asarray(model(batch[..., None]))[..., 0]
  table = {r["articulator"]: r for r in attribution.occlusion_table(predict, mri, masks,
                                                                     attribution.SpecParams())}
  assert table["inside"]["l1_all"] > 1e-3 and table["inside"]["db_all"] > 0.1
  assert table["outside"]["l1_all"] == 0.0 and table["outside"]["db_all"] == 0.0


def test_band_groups_and_thirds_split_the_spectrogram():
  targets = attribution.target_masks()
  bands = [targets[n] for n in attribution.BANDS_HZ]
  assert not np.any(bands[0] & bands[1]) and not np.any(bands[1] & bands[2])
  assert bands[0][:, 0].sum() > 5 and bands[2][:, 0].sum() > 5  # rows in each group
  assert np.array_equal(sum(targets[t].astype(int) for t in attribution.THIRDS),
                        np.ones((64, 64), int))


def test_the_phantom_writes_articulator_masks_on_the_image_grid(phantom_dir):
  masks = attribution.read_masks(os.path.join(phantom_dir, "subjects", "S01", phantom.MASKS))
  assert masks.labels.shape == (26, 128, 128) and masks.labels.dtype == np.uint8
  assert masks.legend == phantom.LABELS
  from cmri2spec_tf.data import sources

  frames = sources.read_mri(os.path.join(phantom_dir, "subjects", "S01", "mri")).frames
  intensity = {name: frames[masks.labels == k].mean() for k, name in masks.legend.items()
               if (masks.labels == k).any()}
  # the model's input shows the drawn anatomy where the masks say: bright jaw, dark air
  assert intensity["jaw"] > intensity["tongue"] > intensity["other tissue"] > \
      intensity["air and background"]
  for name in ("tongue", "lips", "jaw", "velum"):
    assert 0 < (masks.labels == phantom.ARTICULATOR_LABELS[name]).mean() < 0.1, name


def test_explain_on_the_smoke_run_writes_maps_pictures_tables_and_the_report_strip(
    smoke_run, tmp_path):
  import shutil

  run = tmp_path / "run"  # explain writes strips into the run folder: a copy of the shared one
  shutil.copytree(smoke_run[0], run)
  out = tmp_path / "explain"
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.explain", f"--model_dir={run}",
                         f"--out={out}", "--limit=2", "--steps=4"], cwd=REPO,
                        capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "explained: 2/2" in result.stderr
  examples = sorted(p for p in out.iterdir() if p.is_dir())
  assert len(examples) == 2
  for folder in examples:
    assert (folder / "strip.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "animation.gif").read_bytes()[:6] == b"GIF89a"
    with np.load(folder / "maps.npz") as maps:
      assert set(maps.files) == {"mri", "all", *attribution.BANDS_HZ, *attribution.THIRDS}
      assert maps["all"].shape == (26, 128, 128) and np.abs(maps["all"]).sum() > 0
    occlusion = (folder / "occlusion.csv").read_text().splitlines()
    assert occlusion[0].startswith("example,articulator,l1_all,db_all")
    assert {line.split(",")[1] for line in occlusion[1:]} == set(phantom.ARTICULATOR_LABELS)
  printed = result.stdout
  for target in ("all", *attribution.BANDS_HZ):
    assert any(line.strip().startswith(target + " ") for line in printed.splitlines()), target
  summary = (out / "summary.md").read_text()
  assert "Attribution share vs area share" in summary and "all articulators" in summary
  config = json.loads((run / "config.json").read_text())
  strips = sorted(os.listdir(run / "explain"))
  assert strips and all(s.endswith(".png") for s in strips)
  subject = strips[0][:-4]
  assert 'alt="attribution of ' + subject in listening._attribution_strip(str(run), subject)
  assert os.listdir(run / "logs" / "explain") and config["model"] == "cmri2spec"


def test_the_api_explains_an_array_and_refuses_an_export(smoke_run, tmp_path):
  import cmri2spec_tf

  run, _ = smoke_run
  model = cmri2spec_tf.load(str(run))
  mri = np.random.default_rng(1).uniform(size=(26, 128, 128)).astype(np.float32)
  explained = model.explain(mri, steps=4)
  assert set(explained["maps"]) == set(attribution.target_masks())
  assert explained["maps"]["all"].shape == (26, 128, 128)
  model.model = None  # as an export's or a served model's Translator
  with pytest.raises(ValueError, match="needs a training run's folder"):
    model.explain(mri)


def test_lip2audspec_translators_are_explained_the_same_way():
  from cmri2spec_tf.training.trainer import build_trainer

  model = build_trainer(model="lip2audspec").inference_model()
  mri = np.random.default_rng(2).uniform(size=(26, 128, 128)).astype(np.float32)
  targets = attribution.target_masks()
  maps = attribution.integrated_gradients(model, mri, targets, steps=2, batch=2)
  assert set(maps) == set(targets) and maps["all"].shape == (26, 128, 128)
  assert np.abs(maps["all"]).sum() > 0
