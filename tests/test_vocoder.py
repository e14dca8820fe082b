"""The neural vocoder: its inverse-STFT head, losses, training step, command, and its use by
predict, export (the `waveform` signature) and the Python API."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from cmri2spec_tf.speech import losses
from cmri2spec_tf.speech import vocoders
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.models.vocoder import ISTFTHead, build_vocoder
from tests.conftest import REPO
from tests import launcher

PARAMS = SpecParams()


def _tone(samples=21000, seed=0):
  t = np.arange(samples) / PARAMS.sample_rate
  rng = np.random.default_rng(seed)
  return (0.2 * np.sin(2 * np.pi * 180 * t) * np.hanning(samples)
          + 0.01 * rng.standard_normal(samples)).astype(np.float32)


def test_istft_head_puts_frame_j_at_sample_j_times_hop():
  """Given the exact log magnitude and phase of a signal's centred STFT, the head gives the
  signal back: its frames sit where librosa's (and the targets') frames sit."""
  x = _tone()[None]
  real, imag = keras.ops.stft(x, PARAMS.n_fft, PARAMS.hop_length, PARAMS.n_fft, window="hann",
                              center=True)
  real, imag = np.asarray(real), np.asarray(imag)
  spectrum = np.concatenate([np.log(np.hypot(real, imag) + 1e-12), np.arctan2(imag, real)], -1)
  y = np.asarray(ISTFTHead(PARAMS.n_fft, PARAMS.hop_length)(spectrum))
  frames = real.shape[1]
  assert y.shape == (1, (frames - 1) * PARAMS.hop_length)
  inner = slice(PARAMS.n_fft, y.shape[1] - PARAMS.n_fft)  # away from the edges
  assert np.abs(y[0, inner] - x[0, inner]).max() < 1e-3 * np.abs(x).max()


def test_the_magnitude_starts_at_the_least_squares_inverse_of_the_mel():
  import librosa

  from cmri2spec_tf.data.spectrogram import mel_power, normalize_power, normalized_to_power
  from cmri2spec_tf.models.vocoder import MelPrior

  y = normalize_power(mel_power(_tone(), PARAMS), PARAMS)  # [64 mels, 64 frames]
  prior = MelPrior(PARAMS.sample_rate, PARAMS.n_fft, PARAMS.n_mels, PARAMS.fmin, PARAMS.fmax,
                   PARAMS.db_min, PARAMS.db_max)(y.T[None])
  basis = librosa.filters.mel(sr=PARAMS.sample_rate, n_fft=PARAMS.n_fft, n_mels=PARAMS.n_mels)
  linear = np.maximum(np.linalg.pinv(basis) @ normalized_to_power(y, PARAMS), 1e-10)
  assert np.allclose(np.asarray(prior)[0], 0.5 * np.log(linear).T, atol=1e-3)
  model = build_vocoder(PARAMS, channels=16, blocks=1)
  assert not np.any(model.get_layer("log_magnitude_residual").get_weights()[0])


def test_generator_output_length_and_losses():
  model = build_vocoder(PARAMS, channels=16, blocks=1)
  mel = np.random.default_rng(0).uniform(0, 1, (2, 64, 64)).astype(np.float32)
  assert model(mel).shape == (2, 63 * PARAMS.hop_length)
  x = tf.constant(np.stack([_tone(), _tone(seed=1)]))
  assert np.allclose(losses.multi_resolution_stft(x, x), 0, atol=1e-6)
  noisy = x + 0.05 * tf.random.stateless_normal(x.shape, seed=[1, 2])
  assert np.all(losses.multi_resolution_stft(x, noisy).numpy() > 0.1)
  loss = vocoders.vocoder_loss(PARAMS, 1.0)
  assert np.allclose(loss(x, x), 0, atol=1e-6) and np.all(loss(x, noisy).numpy() > 0.1)


def test_train_steps_lower_the_loss_on_a_batch(phantom_dir):
  config = vocoders.VocoderConfig(phantom_dir, "", batch_size=4, crop_frames=24, channels=32,
                                  blocks=1)
  waveforms, subjects = vocoders.training_audio(config, PARAMS)
  assert len(waveforms) == 4 and len(subjects) == 4  # leave-one-out fold 0: 4 of 5 subjects
  mel, waveform = next(iter(vocoders.crop_batches(waveforms, PARAMS, config)))
  assert mel.shape == (4, 24, 64) and waveform.shape == (4, 23 * PARAMS.hop_length)
  keras.utils.set_random_seed(0)
  model = build_vocoder(PARAMS, channels=32, blocks=1)
  model.compile(keras.optimizers.Adam(1e-3), loss=vocoders.vocoder_loss(PARAMS, 1.0))
  first = float(model.train_on_batch(mel, waveform))
  for _ in range(30):
    last = float(model.train_on_batch(mel, waveform))
  assert last < 0.8 * first, (first, last)


def test_given_mels_are_cropped_in_step_with_their_waveforms():
  """Fine-tuning's crops (given mel timelines, e.g. predictions): crop frame j sits at sample
  j x hop of the waveform crop, as for the audio's own mels; no speed change. Fixtures encode
  time: each mel frame holds its own index, each sample its own index."""
  hop = PARAMS.hop_length
  lengths = [90, 61]  # frames
  mels = [np.repeat(np.arange(n, dtype=np.float32)[:, None] / 1000, 64, axis=1) for n in lengths]
  waveforms = [np.arange((n - 1) * hop + 1, dtype=np.float32) for n in lengths]
  config = vocoders.VocoderConfig("", "", batch_size=8, crop_frames=24, gain_db=0.0,
                                  speeds=(0.85, 1.0))
  mel, waveform = next(iter(vocoders.crop_batches(waveforms, PARAMS, config, mels)))
  mel, waveform = np.asarray(mel), np.asarray(waveform)
  assert waveform.shape == (8, 23 * hop)
  first_frame = np.round(mel[:, 0, 0] * 1000).astype(int)
  np.testing.assert_array_equal(waveform[:, 0], first_frame * hop)
  np.testing.assert_array_equal(np.round(mel[:, :, 0] * 1000) - first_frame[:, None],
                                np.arange(24)[None].repeat(8, 0))
  np.testing.assert_array_equal(np.diff(waveform, axis=1), 1)  # one speed: the given one


def test_vocoder_command_writes_a_vocoder_that_voices_any_width(smoke_vocoder):
  folder, result = smoke_vocoder
  assert "wrote vocoder.keras and vocoder.json" in result.stdout
  info = json.loads((folder / vocoders.VOCODER_JSON).read_text())
  assert info["steps"] == 4 * 50 and info["spec_params"]["hop_length"] == 330
  assert np.isfinite(info["final_loss"]) and info["training_seconds"] > 0
  assert not [f for f in os.listdir(folder) if f.startswith(".")]  # no temporaries left
  vocoder = vocoders.load(str(folder))
  window = np.full((64, 64), 0.4, np.float32)
  assert vocoder(window).shape == (PARAMS.window_samples,)
  assert vocoder(np.full((64, 100), 0.4, np.float32)).shape == (99 * PARAMS.hop_length,)
  batch = vocoder.many(np.stack([window, window * 0.5]))
  assert np.allclose(batch[0], vocoder(window), atol=1e-5)


def test_vocoder_command_goes_on_training_and_refuses_bad_input(smoke_vocoder, tmp_path):
  import shutil

  folder, _ = smoke_vocoder
  copy = tmp_path / "vocoder"
  shutil.copytree(folder, copy)
  info = json.loads((copy / vocoders.VOCODER_JSON).read_text())
  data_dir = info["config"]["data_dir"]
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.vocoder",
                         f"--flagfile={REPO}/configs/vocoder_smoke.cfg", f"--data_dir={data_dir}",
                         f"--model_dir={copy}", "--split=2", "--epochs=1",
                         "--steps_per_epoch=2"], cwd=REPO, capture_output=True, text=True,
                        timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "going on from the vocoder" in result.stdout
  assert json.loads((copy / vocoders.VOCODER_JSON).read_text())["steps"] == info["steps"] + 2
  missing = launcher.run([sys.executable, "-m", "cmri2spec_tf.vocoder",
                          f"--data_dir={tmp_path}/nothing", f"--model_dir={tmp_path}/v"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
  assert missing.returncode == 1 and "Traceback" not in missing.stderr
  assert f"{tmp_path}/nothing" in missing.stderr
  assert not (tmp_path / "v" / vocoders.VOCODER_KERAS).exists()


def test_predict_and_the_api_voice_with_the_vocoder(smoke_run, smoke_vocoder, tmp_path):
  import cmri2spec_tf

  run, _ = smoke_run
  folder, _ = smoke_vocoder
  config = json.loads((run / "config.json").read_text())
  series = os.path.join(config["data_dir"], "subjects", "S01", "mri")
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.predict", f"--model={run}",
                         f"--mri={series}", f"--out={tmp_path}/S01", f"--vocoder={folder}"],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  model = cmri2spec_tf.load(str(run), vocoder=str(folder))
  spectrogram = np.load(tmp_path / "S01.npy")
  expected = model.to_audio(spectrogram)
  assert np.allclose(expected, vocoders.load(str(folder))(spectrogram), atol=1e-6)
  written, rate = soundfile.read(tmp_path / "S01.wav", dtype="float32")
  assert rate == 22050 and written.shape == (PARAMS.window_samples,)
  assert np.abs(written - np.clip(expected, -1, 1)).max() < 2 / 32768  # 16-bit rounding
  griffin_lim = cmri2spec_tf.load(str(run)).to_audio(spectrogram)
  assert np.abs(griffin_lim - expected).max() > 1e-3  # really another vocoder


WAVEFORM_IN_A_FRESH_PROCESS = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["waveform"](mri=tf.constant(np.load(sys.argv[2])))
np.savez(sys.argv[3], spectrogram=out["spectrogram"].numpy(), waveform=out["waveform"].numpy())
"""


def test_export_with_a_vocoder_has_the_waveform_signature(smoke_run, smoke_vocoder, tmp_path):
  from cmri2spec_tf.serving import savedmodel
  from cmri2spec_tf.data import dicom
  from cmri2spec_tf.training.runs import load_translator

  run, _ = smoke_run
  folder, _ = smoke_vocoder
  export_dir = tmp_path / "serving" / "1"
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.export", f"--model_dir={run}",
                         f"--export_dir={export_dir}", f"--vocoder={folder}"], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "waveform:" in result.stdout
  config = json.loads((run / "config.json").read_text())
  mri = dicom.read_cine(os.path.join(config["data_dir"], "subjects", "S01", "mri")).frames
  mri = np.stack([mri, mri[::-1]])[..., None]
  np.save(tmp_path / "mri.npy", mri)
  served = launcher.run([sys.executable, "-c", WAVEFORM_IN_A_FRESH_PROCESS, str(export_dir),
                         str(tmp_path / "mri.npy"), str(tmp_path / "out.npz")], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert served.returncode == 0, served.stderr[-3000:]
  out = np.load(tmp_path / "out.npz")
  assert out["waveform"].shape == (2, PARAMS.window_samples)
  translator, _, _ = load_translator(str(run), "best", precision="float32")
  spectrograms = np.asarray(translator.predict_on_batch(mri))[..., 0]
  expected = vocoders.load(str(folder)).many(spectrograms)
  assert np.allclose(out["spectrogram"][..., 0], spectrograms, atol=1e-5)
  assert np.allclose(out["waveform"], np.stack(expected), atol=1e-4)
  body = json.dumps({"predictions": [{"spectrogram": s.tolist(), "waveform": w.tolist()}
                                     for s, w in zip(out["spectrogram"], out["waveform"])]})
  assert np.allclose(savedmodel.rest_waveforms(body.encode()), out["waveform"])
  assert json.loads(savedmodel.rest_request(mri, "waveform"))["signature_name"] == "waveform"


def test_a_vocoder_of_other_spectrogram_parameters_is_refused(smoke_vocoder):
  folder, _ = smoke_vocoder
  other = SpecParams(db_min=-90.0)
  with pytest.raises(ValueError, match="other spectrogram parameters"):
    vocoders.from_flag(str(folder), other)
  assert isinstance(vocoders.from_flag(None, other), vocoders.GriffinLim)
