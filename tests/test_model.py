"""Networks (Table 1), loss terms (eqs. 1-4), the two updates, and mixed precision on CPU."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cmri2spec_tf.training import losses
from cmri2spec_tf.models import translator as translator_lib
from cmri2spec_tf.models.discriminator import build_discriminator
from cmri2spec_tf.training.trainer import build_trainer


def _random_pairs(n_pairs=2, seed=0, same_word=1.0):
  rng = np.random.default_rng(seed)
  mri = rng.uniform(0, 1, (2 * n_pairs, 26, 128, 128, 1)).astype(np.float32)
  spec = rng.uniform(0, 1, (2 * n_pairs, 64, 64, 1)).astype(np.float32)
  return {"mri_a": mri[:n_pairs], "mri_b": mri[n_pairs:], "spec_a": spec[:n_pairs],
          "spec_b": spec[n_pairs:], "same_word": np.full(n_pairs, same_word, np.float32)}


def test_table1_shapes():
  encoder = translator_lib.build_encoder()
  stages = [l.output.shape[1:] for l in encoder.layers if l.name.startswith("maxpool3d")]
  assert stages == [(13, 64, 64, 32), (7, 32, 32, 32), (4, 16, 16, 64), (2, 8, 8, 64), (1, 4, 4, 128)]
  assert encoder.output.shape[1:] == (4, 4, 128)
  kernels = [l.kernel.shape[:3] for l in encoder.layers if l.name.startswith("conv3d")]
  assert kernels == [(3, 3, 3)] * 5
  decoder = translator_lib.build_decoder()
  assert decoder.input.shape[1:] == (4, 4, 114)
  stages = [l.output.shape[1:] for l in decoder.layers if l.name.startswith("deconv")]
  assert stages == [(8, 8, 96), (16, 16, 24), (32, 32, 4), (64, 64, 1)]
  s, mu, logvar = translator_lib.split_latent(tf.zeros([2, 4, 4, 128]))
  assert (s.shape[-1], mu.shape[-1], logvar.shape[-1]) == (100, 14, 14)
  model = translator_lib.build_translator(encoder, decoder)
  out = model(np.zeros((2, 26, 128, 128, 1), np.float32))
  assert out.shape == (2, 64, 64, 1) and np.all((out > 0) & (out < 1))
  discriminator = build_discriminator()
  assert [l.output.shape[1:] for l in discriminator.layers if l.name.startswith("conv2d")] == [
      (32, 32, 32), (16, 16, 64), (8, 8, 128)]
  assert discriminator.output.shape[1:] == (1,)
  assert sum(1 for l in discriminator.layers if isinstance(l, keras.layers.Dense)) == 2


def test_translator_has_far_fewer_parameters_than_it_decodes():
  """Fully convolutional: encoder + decoder ~0.63 M parameters."""
  count = translator_lib.build_encoder().count_params() + translator_lib.build_decoder().count_params()
  assert 600_000 < count < 650_000


def test_kl_matches_closed_form_and_is_zero_for_identical():
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=(2, 3, 4, 4, 14)).astype(np.float32)
  var1, var2 = rng.uniform(0.2, 3.0, size=(2, 3, 4, 4, 14)).astype(np.float32)
  expected = 0.5 * (np.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1)
  expected = expected.sum(-1).mean(axis=(1, 2))
  got = losses.pairwise_kl(mu1, np.log(var1), mu2, np.log(var2)).numpy()
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # A hand-picked case: N(1, 4) vs N(0, 1) in every channel: 0.5 * (log 1/4 + 5 - 1) each.
  one = losses.pairwise_kl(np.ones((1, 4, 4, 14)), np.full((1, 4, 4, 14), np.log(4.0)),
                           np.zeros((1, 4, 4, 14)), np.zeros((1, 4, 4, 14))).numpy()
  np.testing.assert_allclose(one, [14 * 0.5 * (np.log(0.25) + 4)], rtol=1e-6)
  np.testing.assert_allclose(losses.pairwise_kl(mu1, np.log(var1), mu1, np.log(var1)), 0, atol=1e-6)


def test_mse_and_gan_terms():
  y = np.zeros((2, 64, 64, 1), np.float32)
  y_hat = np.full((2, 64, 64, 1), 0.5, np.float32)
  np.testing.assert_allclose(losses.reconstruction_mse(y, y_hat), [0.5 * 4096 * 0.25] * 2)
  logits = np.array([[0.0], [3.0]], np.float32)
  np.testing.assert_allclose(losses.translator_adversarial(logits), -np.log(1 / (1 + np.exp(-logits[:, 0]))), rtol=1e-6)
  np.testing.assert_allclose(losses.discriminator_bce(logits, logits),
                             -np.log(1 / (1 + np.exp(-logits[:, 0]))) - np.log(1 - 1 / (1 + np.exp(-logits[:, 0]))), rtol=1e-5)


def test_kl_only_for_same_word_pairs():
  trainer = build_trainer(gan=False)
  batch = _random_pairs(n_pairs=4)
  same = np.array([1, 0, 1, 0], np.float32)
  _, mu, logvar = translator_lib.split_latent(trainer.encoder(np.concatenate([batch["mri_a"], batch["mri_b"]])))
  kl = losses.pairwise_kl(mu[:4], logvar[:4], mu[4:], logvar[4:]).numpy()
  terms, _ = trainer.translator_update(np.concatenate([batch["mri_a"], batch["mri_b"]]),
                                       np.concatenate([batch["spec_a"], batch["spec_b"]]), same)
  np.testing.assert_allclose(terms["l_kl"], np.mean(same * kl), rtol=1e-4)
  np.testing.assert_allclose(terms["loss"], terms["l_mse"] + 0.5 * terms["l_kl"], rtol=1e-5)
  terms, _ = trainer.translator_update(np.concatenate([batch["mri_a"], batch["mri_b"]]),
                                       np.concatenate([batch["spec_a"], batch["spec_b"]]),
                                       np.zeros(4, np.float32))
  assert float(terms["l_kl"]) == 0.0
  np.testing.assert_allclose(terms["loss"], terms["l_mse"], rtol=1e-6)


def test_each_update_touches_only_its_own_weights():
  trainer = build_trainer()
  batch = _random_pairs()
  mri = np.concatenate([batch["mri_a"], batch["mri_b"]])
  real = np.concatenate([batch["spec_a"], batch["spec_b"]])
  snapshot = lambda model: [w.copy() for w in model.get_weights()]
  changed = lambda before, model: any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
  enc, dec, dis = snapshot(trainer.encoder), snapshot(trainer.decoder), snapshot(trainer.discriminator)
  trainer.discriminator_update(real, real * 0.5)
  assert not changed(enc, trainer.encoder) and not changed(dec, trainer.decoder)
  assert changed(dis, trainer.discriminator)
  dis = snapshot(trainer.discriminator)
  trainer.translator_update(mri, real, batch["same_word"])
  assert changed(enc, trainer.encoder) and changed(dec, trainer.decoder)
  assert not changed(dis, trainer.discriminator)


def test_test_step_reports_l1_and_mse():
  trainer = build_trainer(gan=False)
  rng = np.random.default_rng(1)
  mri = rng.uniform(size=(3, 26, 128, 128, 1)).astype(np.float32)
  spec = rng.uniform(size=(3, 64, 64, 1)).astype(np.float32)
  prediction = trainer.predict_on_batch(mri)
  logs = trainer.evaluate(mri, spec, batch_size=3, verbose=0, return_dict=True)
  np.testing.assert_allclose(logs["l1"], np.abs(spec - prediction).mean(), rtol=1e-5)
  np.testing.assert_allclose(logs["mse"], np.square(spec - prediction).mean(), rtol=1e-5)


@pytest.mark.parametrize("name", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_step_runs_on_cpu(name):
  trainer = build_trainer(precision=name)
  assert keras.config.dtype_policy().name == "float32"  # the process-wide policy is untouched
  compute = "float16" if name == "mixed_float16" else "bfloat16"
  conv = trainer.encoder.get_layer("conv3d_1")
  pool = trainer.encoder.get_layer("maxpool3d_1")
  assert conv.compute_dtype == compute and conv.kernel.dtype == "float32"
  # No float16 MaxPool3D kernel on CPU: pooling falls back to float32 there, bfloat16 stays.
  assert pool.compute_dtype == ("float32" if name == "mixed_float16" else "bfloat16")
  assert trainer.decoder.get_layer("sigmoid").compute_dtype == "float32"
  assert trainer.discriminator.get_layer("logit").compute_dtype == "float32"
  is_scaled = isinstance(trainer.translator_optimizer, keras.optimizers.LossScaleOptimizer)
  assert is_scaled == (name == "mixed_float16")
  assert is_scaled == isinstance(trainer.discriminator_optimizer, keras.optimizers.LossScaleOptimizer)
  # One step of one pair: float16 convolutions are very slow on a CPU (a step: ~40 s).
  ds = tf.data.Dataset.from_tensors(_random_pairs(n_pairs=1))
  history = trainer.fit(ds, epochs=1, verbose=0, shuffle=False).history
  for key in ("loss", "l_mse", "l_kl", "l_t", "l_dis"):
    assert np.all(np.isfinite(history[key])), (key, history[key])
  assert trainer(np.zeros((1, 26, 128, 128, 1), np.float32)).dtype == "float32"


def test_mixed_float16_keeps_float16_pooling_on_a_gpu(monkeypatch):
  real = tf.config.list_logical_devices
  monkeypatch.setattr(tf.config, "list_logical_devices",
                      lambda kind=None: ["/GPU:0"] if kind == "GPU" else real(kind))
  assert translator_lib.pooling_dtype("mixed_float16") is None
  encoder = translator_lib.build_encoder("mixed_float16")
  assert encoder.get_layer("maxpool3d_1").compute_dtype == "float16"


def test_overfits_two_examples():
  """The translator memorises 2 examples (1 pair): L1 < 0.03 within 400 steps (the fast recipe,
  the demo's: 100 measured; the paper's: 190; 4 examples took ~250 steps of twice the cost)."""
  keras.utils.set_random_seed(0)
  trainer = build_trainer(gan=False, pair_disentangle=False, recipe="fast")
  rng = np.random.default_rng(0)
  mri = rng.uniform(size=(2, 26, 128, 128, 1)).astype(np.float32)
  t = np.linspace(0, 1, 64)
  spec = np.stack([0.3 + 0.4 * np.outer(np.sin((k + 1) * np.pi * t) ** 2, t) for k in range(2)])
  spec = spec[..., None].astype(np.float32)
  trainer.decoder.get_layer(translator_lib.OUTPUT_LAYER).bias.assign([np.log(spec.mean() / (1 - spec.mean()))])
  batch = {"mri_a": mri[:1], "mri_b": mri[1:], "spec_a": spec[:1], "spec_b": spec[1:],
           "same_word": np.ones(1, np.float32)}
  chunk = tf.data.Dataset.from_tensors(batch).repeat(25)
  history = []
  for _ in range(16):
    trainer.fit(chunk, epochs=1, verbose=0, shuffle=False)
    history.append(trainer.evaluate(mri, spec, verbose=0, return_dict=True)["l1"])
    if history[-1] < 0.03:
      break
  assert history[-1] < 0.03, history
  # It learned the examples, not their mean: predictions differ per input.
  assert np.std(trainer.predict_on_batch(mri), axis=0).mean() > 0.02


def test_validation_on_recordings_equals_validation_on_every_example(tmp_path, phantom_dir):
  """test_step with all windows of a recording == test_step on each (mri, window) example."""
  from cmri2spec_tf.data import dataset, pairs

  data = dataset.load_dataset(phantom_dir, cache_dir=str(tmp_path / "c"), verbose=False)
  subset = data.subset(["S01", "S04"])
  trainer = build_trainer(seed=3)
  per_example = trainer.evaluate(pairs.examples_dataset(subset, 50, window_stride=4), verbose=0,
                                 return_dict=True)
  per_recording = trainer.evaluate(pairs.recordings_dataset(subset, 2, window_stride=4),
                                   verbose=0, return_dict=True)
  assert per_recording["l1"] == pytest.approx(per_example["l1"], abs=1e-6)
  assert per_recording["mse"] == pytest.approx(per_example["mse"], abs=1e-7)
  assert per_recording["l1"] > 0.01


def test_paper_size_pipeline_stays_under_2_gb(tmp_path):
  """A whole paper-size epoch (63 subjects x 100 windows) through pairs_dataset in a fresh
  process: the stored float16 arrays plus the pipeline must stay under 2 GB of resident memory."""
  import subprocess
  import sys

  script = """
import numpy as np
import cmri2spec_tf
from cmri2spec_tf.data import pairs
from cmri2spec_tf.data.dataset import ArrayDataset
from cmri2spec_tf.data.spectrogram import SpecParams
rng = np.random.default_rng(0)
data = ArrayDataset([f"S{i:02d}" for i in range(63)], ["ageese"] * 43 + ["asouk"] * 20,
                    rng.random((63, 26, 128, 128), np.float32).astype(np.float16),
                    rng.random((63, 100, 64, 64), np.float32).astype(np.float16), SpecParams())
n = 0
for batch in pairs.pairs_dataset(data, batch_size=8, seed=0):
  n += batch["mri_a"].shape[0]
# VmHWM: this process's peak (ru_maxrss would include the parent's, as it survives exec)
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(n, peak_kb // 1024)
"""
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  pairs_seen, peak_mb = map(int, result.stdout.split())
  assert pairs_seen == 6300 // 8 * 8  # whole batches of a 6,300-pair epoch
  print(f"paper-size epoch: peak RSS {peak_mb} MB")
  assert peak_mb < 2048, f"peak RSS {peak_mb} MB"


def test_xla_steps_match_the_graph_steps():
  """--jit=on (what Keras's "auto" picks on one GPU) trains the same math: from the same weights
  on the same pairs, three XLA-compiled steps give the graph-mode losses and weight updates, and
  validation the same L1. The reparameterization noise is zero in both here: TensorFlow's
  stateless normal sampler draws other numbers under XLA from the same seed."""
  default, xla = build_trainer(), build_trainer(jit="on")
  assert default.jit_compile is False  # "auto" on a CPU-only machine
  assert xla.jit_compile is True and build_trainer(jit="off").jit_compile is False
  start = [w.copy() for network in default.networks for w in network.get_weights()]
  for target, source in zip(xla.networks, default.networks):
    target.set_weights(source.get_weights())
  pairs = tf.data.Dataset.from_tensors(_random_pairs(n_pairs=1)).repeat(3)
  heldout = _random_pairs(n_pairs=2, seed=1)
  histories, updates = [], []
  for trainer in (default, xla):
    trainer.latent_noise = tf.zeros_like
    history = trainer.fit(pairs, epochs=1, verbose=0, shuffle=False).history
    history.update(trainer.evaluate(heldout["mri_a"], heldout["spec_a"], verbose=0,
                                    return_dict=True))
    # validation's form: every window of a recording per MRI, [B, windows, 64, 64, 1]
    windows = np.stack([heldout["spec_a"], heldout["spec_b"]], axis=1)
    history.update({f"recording_{k}": v for k, v in trainer.evaluate(
        heldout["mri_a"], windows, verbose=0, return_dict=True).items()})
    histories.append(history)
    weights = [w for network in trainer.networks for w in network.get_weights()]
    updates.append(np.concatenate([(w - w0).ravel() for w, w0 in zip(weights, start)]))
  for key in ("l_mse", "l_kl", "l_t", "l_dis", "l1", "mse", "recording_l1", "recording_mse"):
    np.testing.assert_allclose(np.ravel(histories[1][key]), np.ravel(histories[0][key]),
                               rtol=1e-4, err_msg=key)
  assert np.abs(updates[0]).max() > 1e-3  # three Adam steps moved the weights
  assert np.corrcoef(updates[0], updates[1])[0, 1] > 0.999
  with pytest.raises(ValueError, match="jit must be one of"):
    build_trainer(jit="yes")


def test_mixed_float16_xla_step_matches_float32():
  """What one GPU runs by default (mixed_float16 with Keras's automatic XLA, loss-scaled
  optimizers) compiles, computes the float32 step's losses to float16 accuracy (same weights,
  zero noise in both, as in test_xla_steps_match_the_graph_steps), and then trains: at Keras's
  initial loss scale (2^15) the first steps' float16 gradients overflow and are skipped while
  the scale halves (so only the first step is compared), then the weights move.
  XLA's float16 convolutions on a CPU take seconds, unlike TensorFlow's own (minutes)."""
  reference = build_trainer()
  xla16 = build_trainer(jit="on", precision="mixed_float16")
  assert xla16.jit_compile is True
  assert isinstance(xla16.translator_optimizer, keras.optimizers.LossScaleOptimizer)
  for target, source in zip(xla16.networks, reference.networks):
    target.set_weights(source.get_weights())
  start = [w.copy() for w in xla16.encoder.get_weights()]
  one_step = tf.data.Dataset.from_tensors(_random_pairs(n_pairs=1))
  histories = []
  for trainer in (reference, xla16):
    trainer.latent_noise = tf.zeros_like
    histories.append(trainer.fit(one_step, epochs=1, verbose=0, shuffle=False).history)
  for key in ("l_mse", "l_kl", "l_t", "l_dis"):
    np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=0.01, atol=1e-3,
                               err_msg=key)
  for _ in range(10):  # one step at a time until the first one applied (the 7th here: 2^15 / 2^6)
    history = xla16.fit(one_step, epochs=1, verbose=0, shuffle=False).history
    assert all(np.isfinite(history[key]).all() for key in history), history
    moved = max(np.abs(w - w0).max() for w, w0 in zip(xla16.encoder.get_weights(), start))
    if moved > 0:
      break
  assert float(xla16.translator_optimizer.dynamic_scale) < 2.0 ** 15
  assert 1e-4 < moved < 0.1, moved
