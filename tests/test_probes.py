"""What the model learns: the phantom's factors file, latent probes, per-factor estimators, and
the probe command."""

import json
import shutil
import sys

import numpy as np
import pytest

from cmri2spec_tf.evaluation import probes
from cmri2spec_tf.training import runs
from cmri2spec_tf.data import factors
from cmri2spec_tf.synthetic import phantom
from cmri2spec_tf.data.spectrogram import SpecParams, mel_power, normalize_power
from tests.conftest import PHANTOM_AGEESE, PHANTOM_ASOUK, REPO
from tests import launcher

PARAMS = SpecParams()


def test_the_phantom_writes_its_factors_and_they_round_trip(phantom_dir, tmp_path):
  known = factors.read_factors(phantom_dir)
  assert len(known) == PHANTOM_AGEESE + PHANTOM_ASOUK
  plan = phantom.subject_plan(PHANTOM_AGEESE, PHANTOM_ASOUK)
  for i, (subject_id, word) in enumerate(plan):
    subject = phantom.make_subject(subject_id, word, np.random.default_rng([0, i]))
    row = known[subject_id]
    assert row["word"] == word and row["f0_hz"] == pytest.approx(subject.f0_hz, rel=1e-5)
    assert row["duration_s"] == pytest.approx(subject.n_samples / 22050, rel=1e-5)
    assert 0 < row["vowel_s"] < row["duration_s"]
    assert len(row["segment_fractions"].split(";")) == len(subject.durations)
  rows = [{"subject_id": "A", "word": "x", "f0_hz": 101.5, "vocal_tract_cm": 15.0}]
  factors.write_factors(str(tmp_path), rows)
  back = factors.read_factors(str(tmp_path))
  assert back["A"]["f0_hz"] == 101.5 and back["A"]["duration_s"] is None
  assert factors.read_factors(str(tmp_path / "nothing")) is None


def _latents(rng, n, planted=None):
  noise = rng.normal(0, 1, (n, 224))
  if planted is not None:
    noise[:, :5] += 10 * np.outer(planted, np.ones(5))
  return noise


def test_probes_recover_a_planted_factor_and_find_nothing_in_noise():
  rng = np.random.default_rng(0)
  n_train, n_test = 300, 60
  f0 = rng.uniform(85, 250, n_train + n_test)
  words = np.where(rng.random(n_train + n_test) < 0.5, "ageese", "asouk")
  word_signal = np.where(words == "ageese", 1.0, -1.0)
  mu = _latents(rng, n_train + n_test, word_signal)
  s = _latents(rng, n_train + n_test, (f0 - f0.mean()) / f0.std())
  latents = {"mu": mu, "s": s}
  train = {k: v[:n_train] for k, v in latents.items()}
  test = {k: v[n_train:] for k, v in latents.items()}
  table = probes.probe_table(train, list(words[:n_train]), {"f0_hz": list(f0[:n_train])},
                             test, list(words[n_train:]), {"f0_hz": list(f0[n_train:])})
  assert table["mu"]["word"]["accuracy"] == 1.0
  assert table["s"]["f0_hz"] > 0.95 and table["both"]["f0_hz"] > 0.9
  assert table["mu"]["f0_hz"] < 0.15  # no F0 in mu
  assert abs(table["s"]["word"]["accuracy"] - 0.5) < 0.2  # no word in s: about chance
  assert "vocal_tract_cm" not in table["mu"]  # unknown factors are left out


def _harmonic(f0, formant_hz=(), seconds=0.95, voiced=(0.2, 0.7)):
  """Harmonics of f0, shaped by resonances at formant_hz, on only in the `voiced` span (s)."""
  t = np.arange(int(seconds * 22050)) / 22050
  gains = lambda f: np.prod([1 / np.sqrt((1 - (f / fk) ** 2) ** 2 + (0.1 * f / fk) ** 2)
                             for fk in formant_hz]) if formant_hz else 1.0
  x = sum(gains(k * f0) * np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(8000 / f0)))
  gate = ((t >= voiced[0]) & (t < voiced[1])).astype(float)
  return (0.05 * x * gate / np.abs(x).max()).astype(np.float32)


def test_estimators_find_known_f0_formants_and_voicing():
  assert probes.f0_hz(_harmonic(140.0), 22050) == pytest.approx(140.0, abs=3)
  assert probes.f0_hz(np.zeros(21000, np.float32), 22050) is None
  spectrogram = normalize_power(mel_power(_harmonic(120.0, (600.0, 1700.0))[:21000], PARAMS),
                                PARAMS)
  f1, f2 = probes.formants(spectrogram, PARAMS)
  assert f1 == pytest.approx(600, abs=100) and f2 == pytest.approx(1700, abs=200)
  onset, offset = probes.voicing_times(spectrogram, PARAMS)
  assert onset == pytest.approx(0.2, abs=0.04) and offset == pytest.approx(0.7, abs=0.04)
  errors = probes.factor_errors([{"f0_hz": 100.0, "f1_hz": None}, {"f0_hz": 200.0, "f1_hz": 500.0}],
                                [{"f0_hz": 110.0, "f1_hz": 400.0}, {"f0_hz": 180.0, "f1_hz": 450.0}])
  assert errors == {"f0_hz": pytest.approx(15.0), "f1_hz": pytest.approx(50.0)}


def test_probe_command_on_the_smoke_run_and_without_factors(smoke_run, tmp_path):
  run, _ = smoke_run
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.probe", f"--model_dir={run}"],
                        cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads((run / runs.PROBES_JSON).read_text())
  assert set(report["probes"]) == {"mu", "s", "both"}
  assert {"word", "f0_hz", "vocal_tract_cm"} <= set(report["probes"]["mu"])
  levels = report["heldout_l1"]
  assert levels["recording_mean"] < levels["word_mean"] <= levels["mean_spectrogram"] + 1e-6
  assert 0 < report["training_l1"] < 0.5
  assert set(report["factor_errors"]) == {"model", "word_mean"}
  assert set(report["factor_lookups"]) == {"shown", "all"}
  assert "told the speaker's factors instead of the MRI (all: " in result.stdout
  assert (run / runs.LATENT_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert "probes (held-out" in result.stdout and "per-factor mean absolute error" in result.stdout
  config = json.loads((run / "config.json").read_text())
  own_data = tmp_path / "data"
  shutil.copytree(config["data_dir"], own_data, ignore=shutil.ignore_patterns(factors.FACTORS_CSV))
  copy = tmp_path / "run"
  shutil.copytree(run, copy)
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.probe", f"--model_dir={copy}",
                         f"--data_dir={own_data}", f"--cache_dir={config['cache_dir']}"],
                        cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "probes skipped: no subjects.csv beside the manifest" in result.stdout
  assert "per-factor mean absolute error" in result.stdout  # measured without factors


def test_factor_lookups_reach_what_the_factors_explain():
  """Mean windows made of a word pattern plus a shown factor's and a hidden factor's patterns:
  told the shown factor the lookup beats the word's mean, told every factor it reaches the floor."""
  from cmri2spec_tf.data.dataset import ArrayDataset
  from cmri2spec_tf.data.spectrogram import SpecParams

  rng = np.random.default_rng(0)
  n = 120
  ids, words = [f"S{i:03d}" for i in range(n)], ["ageese", "asouk"] * (n // 2)
  known = {s: {c: float(rng.normal()) for c in probes.FACTOR_SETS["all"]} for s in ids}
  patterns = {"vocal_tract_cm": rng.uniform(0, 0.03, (64, 64)),
              "noise_dbfs": rng.uniform(0, 0.01, (64, 64))}
  windows = np.stack([0.5 + (0.1 if w == "asouk" else 0) * np.eye(64)
                      + sum(known[s][c] * p for c, p in patterns.items())
                      for s, w in zip(ids, words)])
  spectrograms = np.repeat(windows[:, None], 2, axis=1).astype(np.float16)  # floor: 0
  data = ArrayDataset(ids, words, np.zeros((n, 1, 1, 1), np.float16), spectrograms, SpecParams())
  train, heldout = data.subset(ids[:90]), data.subset(ids[90:])
  levels = probes.factor_lookup_levels(train, heldout, known)
  word_mean = probes.reference_levels(train, heldout)["word_mean"]
  assert levels["shown"]["factors"] == list(probes.SHOWN_FACTORS)
  assert levels["all"]["heldout_l1"] < 0.001 < levels["shown"]["heldout_l1"] < 0.5 * word_mean
  del known[ids[95]]["noise_dbfs"]  # not known for every recording: that lookup is left out
  assert set(probes.factor_lookup_levels(train, heldout, known)) == {"shown"}
