"""Speech metrics in `evaluate` and the listening report, opened in a real headless Chromium."""

import csv
import json
import os
import shutil

import pytest

from cmri2spec_tf.training import runs
from cmri2spec_tf.speech import speech_metrics

CHECK_MEDIA = """async () => {
  const images = [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0,
                                                 width: i.naturalWidth, height: i.naturalHeight}));
  const audios = await Promise.all([...document.querySelectorAll('audio')].map(a =>
    new Promise(resolve => {
      const done = () => resolve({duration: a.duration, error: a.error ? a.error.code : null,
                                  label: a.previousElementSibling.textContent});
      if (a.readyState >= 1) return done();
      a.addEventListener('loadedmetadata', done);
      a.addEventListener('error', done);
      a.load();
    })));
  return {images, audios, title: document.title};
}"""


def chromium() -> str:
  """The Chromium binary: $CHROMIUM, else the Debian package's (.ci/run installs it)."""
  for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
    if candidate and shutil.which(candidate):
      return shutil.which(candidate)
  pytest.fail("no Chromium found: install the Debian package `chromium` (.ci/run does) or set "
              "CHROMIUM to a Chromium or Chrome binary")


@pytest.fixture(scope="module")
def evaluated(evaluated_smoke_run):
  return evaluated_smoke_run


def test_evaluate_scores_every_method_and_the_ceiling_through_both_vocoders(evaluated):
  run, stdout = evaluated
  report = json.loads((run / runs.EVALUATION_JSON).read_text())
  assert report["speech"]["vocoders"] == ["griffin_lim", "vocoder"]
  assert report["speech"]["windows"] == [50]  # 1 window, in the middle of 100
  keys = [f"{v}_{m}" for v in ("griffin_lim", "vocoder") for m in speech_metrics.AUDIO_METRICS]
  ceiling = report["ceiling"]["overall"]
  for name, result in report["methods"].items():
    total = result["overall"]
    assert all(total[k] is not None for k in keys if not k.endswith("pesq")), name
    assert 0 < total["griffin_lim_stoi"] < 1 and total["griffin_lim_mcd"] > 0
    assert len(result["subjects"]) == len(report["heldout_subjects"])
  # the true spectrogram through Griffin-Lim sounds closer to the recording than any guess
  for name in ("cmri2spec", "mean", "nearest_neighbour"):
    assert ceiling["griffin_lim_stoi"] > report["methods"][name]["overall"]["griffin_lim_stoi"]
    assert ceiling["griffin_lim_mcd"] < report["methods"][name]["overall"]["griffin_lim_mcd"]
  assert "truth (ceiling)     griffin_lim" in stdout and "MCD-DTW" in stdout
  # the lookup levels beside the methods: told the word, told the truth (L1 only)
  levels = {name: report["references"][name]["overall"]["l1"]
            for name in ("word_mean", "recording_mean")}
  assert 0 < levels["recording_mean"] < levels["word_mean"] <= \
      report["methods"]["mean"]["overall"]["l1"] + 1e-6
  assert "(word's mean, told the word)" in stdout and "(recording's mean: floor)" in stdout
  assert "griffin_lim_stoi" not in report["references"]["word_mean"]["overall"]
  rows = list(csv.DictReader(open(run / runs.EVALUATION_CSV)))
  assert {"griffin_lim_stoi", "vocoder_pesq"} <= set(rows[0])
  truth = [r for r in rows if r["method"] == "truth"]
  assert truth and all(r["l1"] == "" and float(r["griffin_lim_stoi"]) > 0 for r in truth)
  floor = [r for r in rows if r["method"] == "recording_mean" and r["subject_id"] == "ALL"]
  assert float(floor[0]["l1"]) == pytest.approx(levels["recording_mean"], abs=1e-6)
  page = (run / runs.REPORT_HTML).read_text()
  assert "told the word)" in page and "(recording&#x27;s mean: floor)" in page


def test_report_html_loads_every_image_and_sound_in_chromium(evaluated):
  from playwright.sync_api import sync_playwright

  run, _ = evaluated
  report = json.loads((run / runs.EVALUATION_JSON).read_text())
  page_file = run / runs.REPORT_HTML
  assert "src=\"http" not in page_file.read_text()  # self-contained
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(page_file.as_uri())
    media = page.evaluate(CHECK_MEDIA)
    browser.close()
  subjects = report["heldout_subjects"]
  assert len(media["images"]) == 2 * len(subjects)  # MRI strip + spectrograms per subject
  assert all(i["loaded"] for i in media["images"]), media["images"]
  strip = [i for i in media["images"] if i["alt"].startswith("MRI frames")]
  assert all(i["width"] == 8 * 128 and i["height"] == 128 for i in strip)
  # per subject: the recording, the truth through 2 vocoders, the prediction through 2
  assert len(media["audios"]) == 5 * len(subjects)
  assert all(a["error"] is None for a in media["audios"]), media["audios"]
  assert all(a["duration"] == pytest.approx(21000 / 22050, abs=1e-3) for a in media["audios"])
  labels = [a["label"] for a in media["audios"][:5]]
  assert labels == ["recording, window 50", "truth through griffin_lim", "truth through vocoder",
                    "prediction through griffin_lim", "prediction through vocoder"]
