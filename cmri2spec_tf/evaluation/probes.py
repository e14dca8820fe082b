"""What the model learns (the `probe` command's work): linear probes of the latent parts, the
errors of the predicted speech per factor, and a picture of the latent space.

The paper's claim (Sec. 3.1): the pairwise KL splits the encoder's latent into content w (= mu at
inference) and style s; w should hold the word and little of the speaker, s the speaker and
little of the word. With the dataset's factors (data/factors.py; the phantom writes them):

- Probes: every recording of the fold is encoded (s and mu, 4 x 4 x 14 each, flattened); on the
  training subjects' recordings a logistic regression (the word) and ridge regressions (F0,
  vocal-tract length, utterance and vowel duration; RidgeCV over alpha 1e-3..1e3) are fitted on
  standardized features from mu, from s and from both; scored on the held-out subjects:
  accuracy (chance: the majority word's share) and R^2 (0: the training mean).
- Per-factor errors: for each held-out recording, F0 (pYIN median over voiced frames of the
  spectrogram's Griffin-Lim sound), F1 and F2 (the first two peaks of the mean dB mel spectrum
  over voiced frames, cepstrally smoothed; above 150 Hz) and the voicing onset and offset (the first and
  last frame whose energy below 1 kHz is within 25 dB of its maximum) of the true spectrogram
  (middle window), of the model's prediction and of the word's mean training spectrogram; the
  table gives mean absolute errors against the truth.
- Reference levels of held-out L1: the mean training spectrogram, the word's mean training
  spectrogram (a model that knew only the word), each recording's own mean over its windows (a
  model that knew the recording exactly, but predicts one spectrogram for its 100 windows);
  and the model's L1 on its own training subjects (the same inference path), against overfitting.
- Factor lookups: each held-out recording's mean window predicted from the speaker's known
  factors instead of the MRI, by ridge regressions (one per word, alpha by leave-one-out) of the
  training recordings' mean windows on standardized factors: told what an MRI shows (the
  vocal-tract length, the anatomy's size, the utterance's and vowel's durations), then told also
  what it does not (F0 and the recording's background noise level). How low a prediction from
  the images could get, and how much of the error lies in what no image shows.
- latent.png: the first two principal components of mu coloured by word and of s coloured by F0
  (by subject without factors; latents.py).
Lip2AudSpec has no latent split: its probes are skipped with that reason.
"""

from __future__ import annotations

import numpy as np

from cmri2spec_tf.base import numba_cache
from cmri2spec_tf.data.spectrogram import SpecParams, normalized_to_db

CONTINUOUS = ("f0_hz", "vocal_tract_cm", "duration_s", "vowel_s")
# The factor lookups' factors: what an MRI of the speaker shows; and all known ones (what it
# shows, plus the voice's pitch and the recording's background noise, which no image shows).
SHOWN_FACTORS = ("vocal_tract_cm", "anatomy_scale", "duration_s", "vowel_s")
FACTOR_SETS = {"shown": SHOWN_FACTORS, "all": SHOWN_FACTORS + ("f0_hz", "noise_dbfs")}
PARTS = ("mu", "s", "both")
VOICING_RANGE_DB = 25.0
ENVELOPE_CEPSTRA = 14
LOW_BAND_HZ = 1000.0


# ------------------------------------------------------------------ probes
def features(latents: dict[str, np.ndarray], part: str) -> np.ndarray:
  return np.concatenate([latents["mu"], latents["s"]], 1) if part == "both" else latents[part]


def probe_word(train_x, train_words, test_x, test_words) -> dict:
  """Held-out accuracy of a logistic regression, and chance (the majority word's share)."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  test_words = np.asarray(test_words)
  values, counts = np.unique(test_words, return_counts=True)
  chance = float(counts.max() / counts.sum())
  if len(set(train_words)) < 2:
    return {"accuracy": None, "chance": chance}
  model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
  model.fit(train_x, train_words)
  return {"accuracy": float(np.mean(model.predict(test_x) == test_words)), "chance": chance}


def probe_value(train_x, train_y, test_x, test_y) -> float:
  """Held-out R^2 of a ridge regression (alpha by leave-one-out on the training side)."""
  from sklearn.linear_model import RidgeCV
  from sklearn.metrics import r2_score
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
  model.fit(train_x, train_y)
  return float(r2_score(test_y, model.predict(test_x)))


def probe_table(train_latents, train_words, train_factors, test_latents, test_words,
                test_factors) -> dict:
  """{part: {"word": {...}, factor: R^2, ...}} for every latent part; factors are
  {name: [values]} aligned with the recordings (None where unknown: that factor is left out)."""
  table = {}
  for part in PARTS:
    train_x, test_x = features(train_latents, part), features(test_latents, part)
    row = {"word": probe_word(train_x, train_words, test_x, test_words)}
    for name in CONTINUOUS:
      train_y, test_y = train_factors.get(name), test_factors.get(name)
      if train_y is None or test_y is None or None in train_y or None in test_y:
        continue
      row[name] = probe_value(train_x, np.asarray(train_y), test_x, np.asarray(test_y))
    table[part] = row
  return table


# ------------------------------------------------------------------ per-factor speech errors
def mel_frequencies(params: SpecParams) -> np.ndarray:
  librosa = numba_cache.librosa()

  return librosa.mel_frequencies(params.n_mels, fmin=params.fmin, fmax=params.fmax)


def voiced_frames(spectrogram: np.ndarray, params: SpecParams) -> np.ndarray:
  """Frames whose energy below 1 kHz is within 25 dB of its loudest frame ([64, T] normalized)."""
  power = 10 ** (normalized_to_db(spectrogram, params) / 10)
  low = power[mel_frequencies(params) < LOW_BAND_HZ].sum(0)
  level = 10 * np.log10(np.maximum(low, 1e-20))
  return level >= level.max() - VOICING_RANGE_DB


def voicing_times(spectrogram: np.ndarray, params: SpecParams) -> tuple[float, float]:
  """(onset, offset) in seconds from the window's start: the first and last voiced frame."""
  frames = np.flatnonzero(voiced_frames(spectrogram, params))
  seconds = params.hop_length / params.sample_rate
  return float(frames[0] * seconds), float(frames[-1] * seconds)


def formants(spectrogram: np.ndarray, params: SpecParams, count: int = 2) -> list[float | None]:
  """The first `count` peaks (Hz) above 150 Hz of the mean dB mel spectrum over voiced frames,
  cepstrally smoothed (its first ENVELOPE_CEPSTRA DCT coefficients over the mel bands). Coarse
  (64 mel bands; formants closer than ~500 Hz merge): meant for comparing a prediction with the
  truth under the same estimator."""
  import scipy.fft
  from scipy.signal import find_peaks

  db = normalized_to_db(spectrogram, params)[:, voiced_frames(spectrogram, params)].mean(1)
  cepstrum = scipy.fft.dct(db, norm="ortho")
  cepstrum[ENVELOPE_CEPSTRA:] = 0
  envelope = scipy.fft.idct(cepstrum, norm="ortho")
  frequencies = mel_frequencies(params)
  peaks = [p for p in find_peaks(envelope)[0] if frequencies[p] > 150]
  found = [float(frequencies[p]) for p in peaks[:count]]
  return found + [None] * (count - len(found))


def f0_hz(waveform: np.ndarray, sample_rate: int) -> float | None:
  """Median pYIN F0 (60-400 Hz) over voiced frames, None when nothing is voiced."""
  librosa = numba_cache.librosa()

  f0, voiced, _ = librosa.pyin(np.asarray(waveform, np.float32), fmin=60, fmax=400,
                               sr=sample_rate, frame_length=2048)
  values = f0[voiced & np.isfinite(f0)]
  return float(np.median(values)) if values.size else None


def speech_factors(spectrogram: np.ndarray, params: SpecParams, vocoder) -> dict:
  """F0, F1, F2, voicing onset and offset of one [64, 64] spectrogram."""
  onset, offset = voicing_times(spectrogram, params)
  f1, f2 = formants(spectrogram, params)
  return {"f0_hz": f0_hz(vocoder(spectrogram), params.sample_rate), "f1_hz": f1, "f2_hz": f2,
          "onset_s": onset, "offset_s": offset}


def factor_errors(truths: list[dict], estimates: list[dict]) -> dict:
  """Mean |estimate - truth| per factor over the recordings where both are known."""
  errors = {}
  for name in truths[0]:
    pairs = [(t[name], e[name]) for t, e in zip(truths, estimates)
             if t[name] is not None and e[name] is not None]
    errors[name] = float(np.mean([abs(e - t) for t, e in pairs])) if pairs else None
  return errors


# ------------------------------------------------------------------ reference levels and picture
def reference_levels(train, heldout) -> dict:
  """Held-out L1 of: the mean training spectrogram, the word's mean training spectrogram, each
  recording's own mean over its windows."""
  from cmri2spec_tf.evaluation import baselines

  truth = heldout.spectrograms.astype(np.float32)
  l1 = lambda prediction: float(np.abs(truth - prediction[:, None]).mean())
  return {"mean_spectrogram": l1(baselines.mean_spectrogram(train, heldout)),
          "word_mean": l1(baselines.word_mean_predictions(train, heldout)),
          "recording_mean": l1(truth.mean(1))}


def factor_lookup(train, heldout, train_x: np.ndarray, heldout_x: np.ndarray) -> np.ndarray:
  """[R, 64, 64]: each held-out recording's mean window from its factors heldout_x [R, F], by a
  ridge regression per word of the training recordings' mean windows on train_x (standardized;
  alpha by leave-one-out); a word with fewer than 3 training recordings gets its mean window."""
  from sklearn.linear_model import RidgeCV
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  from cmri2spec_tf.evaluation import baselines

  targets = train.spectrograms.astype(np.float32).mean(axis=1).reshape(len(train), -1)
  predicted = baselines.word_mean_predictions(train, heldout).reshape(len(heldout), -1)
  train_words, heldout_words = np.asarray(train.pair_keys), np.asarray(heldout.pair_keys)
  for word in set(heldout.pair_keys):
    rows, out = train_words == word, heldout_words == word
    if rows.sum() >= 3:
      model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
      predicted[out] = model.fit(train_x[rows], targets[rows]).predict(heldout_x[out])
  return np.clip(predicted, 0, 1).reshape(len(heldout), *train.spectrograms.shape[2:])


def factor_lookup_levels(train, heldout, known: dict[str, dict]) -> dict:
  """{set: {"factors": names, "heldout_l1": L1}} of the factor lookups (FACTOR_SETS) whose
  factors are known for every recording of the fold."""
  truth = heldout.spectrograms.astype(np.float32)
  levels = {}
  for name, columns in FACTOR_SETS.items():
    values = [np.array([[known.get(s, {}).get(c) for c in columns] for s in part.subject_ids])
              for part in (train, heldout)]
    if any(v.size == 0 or (v == None).any() for v in values):  # noqa: E711 (elementwise)
      continue
    lookup = factor_lookup(train, heldout, *(v.astype(np.float64) for v in values))
    levels[name] = {"factors": list(columns),
                    "heldout_l1": float(np.abs(truth - lookup[:, None]).mean())}
  return levels


# ------------------------------------------------------------------ a trained run
def probe_run(model_dir: str, data_dir: str | None = None, cache_dir: str | None = None,
              weights: str = "model", verbose: bool = True) -> dict:
  """Probes, per-factor errors, reference levels and latent.png of a run on its fold; writes
  probes.json and latent.png in model_dir and returns the report. Probes are skipped (with the
  reason in the report) without factors or without a latent split."""
  from cmri2spec_tf.evaluation import baselines, evaluation
  from cmri2spec_tf.training import runs
  from cmri2spec_tf.speech import vocoders
  from cmri2spec_tf.evaluation import latents as latents_lib
  from cmri2spec_tf.data import clips
  from cmri2spec_tf.data import factors as factors_lib

  config = runs.load_config(model_dir)
  params = runs.load_spec_params(model_dir)
  data_dir = data_dir or config.data_dir
  data = clips.load_examples(config.pairing, data_dir, params, config.clip_hop_s,
                             cache_dir or config.cache_dir, verbose=verbose)
  train, heldout = data.fold(config.split, config.fold, config.split_seed)
  run = runs.load_trainer(model_dir, weights)
  translator = run.trainer.inference_model()
  predictions = evaluation.predict_recordings(translator, heldout)
  on_training = evaluation.predict_recordings(translator, train)
  truth = heldout.spectrograms[:, heldout.spectrograms.shape[1] // 2].astype(np.float32)
  word_mean = baselines.word_mean_predictions(train, heldout)
  vocoder = vocoders.GriffinLim(params)
  measured = {name: [speech_factors(s, params, vocoder) for s in spectrograms]
              for name, spectrograms in (("truth", truth), ("model", predictions),
                                         ("word_mean", word_mean))}
  report = {"model_dir": model_dir, "model": config.model, "weights": weights,
            "epoch": run.epoch, "heldout_subjects": list(dict.fromkeys(heldout.subject_ids)),
            "heldout_l1": {"model": float(np.abs(heldout.spectrograms.astype(np.float32)
                                                 - predictions[:, None]).mean()),
                           **reference_levels(train, heldout)},
            "training_l1": float(np.abs(train.spectrograms.astype(np.float32)
                                        - on_training[:, None]).mean()),
            "factor_errors": {name: factor_errors(measured["truth"], measured[name])
                              for name in ("model", "word_mean")},
            "factors_measured": measured}
  known = factors_lib.read_factors(data_dir)
  encoder = getattr(run.trainer, "encoder", None)
  if known is None:
    report["probes_skipped"] = f"no {factors_lib.FACTORS_CSV} beside the manifest: the factors are unknown"
  elif encoder is None:
    report["probes_skipped"] = f"{config.model} has no latent split (no s and w to probe)"
  else:
    latents = {side: latents_lib.encode(encoder, part.mri) for side, part in (("train", train),
                                                                  ("heldout", heldout))}
    values = {side: {name: [known.get(s, {}).get(name) for s in part.subject_ids]
                     for name in CONTINUOUS}
              for side, part in (("train", train), ("heldout", heldout))}
    report["factor_lookups"] = factor_lookup_levels(train, heldout, known)
    report["probes"] = probe_table(latents["train"], train.words, values["train"],
                                   latents["heldout"], heldout.words, values["heldout"])
    latents_lib.write_latent_view(model_dir, latents, train, heldout, known,
                      f"{config.model} fold {config.fold}, epoch {run.epoch}")
  runs.write_json(model_dir, runs.PROBES_JSON, report)
  return report


def format_report(report: dict) -> str:
  """The printed tables: reference levels, probes, per-factor errors."""
  levels = report["heldout_l1"]
  lines = [f"{report['model']}, epoch {report['epoch']}, held-out: "
           f"{', '.join(report['heldout_subjects'])}",
           "held-out L1: " + ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in levels.items()),
           f"the model on its training subjects (inference, w = mu): L1 {report['training_l1']:.4f}"]
  for name, level in report.get("factor_lookups", {}).items():
    lines.append(f"told the speaker's factors instead of the MRI ({name}: "
                 f"{', '.join(level['factors'])}): L1 {level['heldout_l1']:.4f}")
  if "probes" in report:
    names = [n for n in CONTINUOUS if n in report["probes"]["mu"]]
    lines += ["", "probes (held-out; word: accuracy, chance "
              f"{report['probes']['mu']['word']['chance']:.2f}; others: R^2)",
              f"{'latent':<8}{'word':>7}" + "".join(f"{n:>16}" for n in names)]
    for part, row in report["probes"].items():
      accuracy = row["word"]["accuracy"]
      lines.append(f"{part:<8}{'-' if accuracy is None else f'{accuracy:.2f}':>7}"
                   + "".join(f"{row[n]:>16.2f}" for n in names))
  else:
    lines += ["", f"probes skipped: {report['probes_skipped']}"]
  lines += ["", "per-factor mean absolute error against the true spectrogram (middle window):",
            f"{'prediction':<12}{'F0 Hz':>8}{'F1 Hz':>8}{'F2 Hz':>8}{'onset ms':>10}{'offset ms':>11}"]
  for name, errors in report["factor_errors"].items():
    cells = [errors["f0_hz"], errors["f1_hz"], errors["f2_hz"]]
    timing = [errors["onset_s"], errors["offset_s"]]
    lines.append(f"{name:<12}" + "".join("       -" if v is None else f"{v:>8.1f}" for v in cells)
                 + "".join("         -" if v is None else f"{1000 * v:>10.1f}" for v in timing))
  return "\n".join(lines)
