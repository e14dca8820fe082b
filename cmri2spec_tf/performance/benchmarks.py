"""Performance figures (the `bench` command's work), one JSON line each:
{"metric": NAME, "value": NUMBER, "unit": UNIT}.

  python -m cmri2spec_tf.bench [--precision=float32] [--batch=8] [--jit] [--steps=6] [--rounds=3]

  machine                    CPU model, cores, GPU, TensorFlow version (value is text)
  train_samples_per_s        the real trainer's `fit` (Keras, metrics, tf.data, both updates) on
                             synthetic pairs; samples = 2 x batch per step; warm-up excluded;
                             best of --rounds rounds alternating with the bare step
  bare_step_samples_per_s    the reference: the trainer's own train_step (same models, losses,
                             loss weights and both Adam updates) called as a plain tf.function,
                             without Keras's fit machinery (callbacks, tf.data, logs)
  train_vs_bare              their ratio (target >= 0.9)
  paper_fold_hours           one training run of the paper's protocol (configs/paper.cfg: 62
                             training subjects x 100 windows = 6,200 pairs per epoch, 30
                             epochs: 372,000 samples) at train_samples_per_s, validation aside;
                             Table 2 in full is 945 such runs (5 rows x 63 folds x 3 seeds)
  pipeline_examples_per_s    the real cache -> tf.data pairs pipeline, examples = 2 x batch
  pipeline_vs_train          pipeline / train throughput (target >= 10: never the bottleneck)
  infer_ms_batch1, infer_ms_batch8   Keras translator (w = mu), median ms per predict_on_batch
  savedmodel_infer_ms_batch1 the exported SavedModel's serving_default, median ms per call
                             (batch-1 calls of both alternate, so neither gets the quiet spells)
  infer_gflop_batch1         multiply-adds x 2 of one translation (the convolutions)
  infer_gflop_per_s          infer_gflop_batch1 / infer_ms_batch1
  griffin_lim_ms_per_audio_s Griffin-Lim (32 iterations, librosa) voicing one second of audio
                             from its mel spectrogram (68 frames of a harmonic test signal),
                             median ms
  vocoder_ms_per_audio_s     the neural vocoder (models/vocoder.py, default size) on the same
  vocoder_vs_griffin_lim     their ratio (below 1: the vocoder is faster)
  matmul_gflop_per_s         a float32 2048 x 2048 matmul here: about the most this machine's
                             TensorFlow gets from its cores, to read the line above against
  peak_rss_mb                the process's peak resident memory

The same numbers on the same machine are what to compare; see the README's "Performance".
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from cmri2spec_tf.base import machine
from cmri2spec_tf.serving import savedmodel
from cmri2spec_tf.data import dataset, pairs
from cmri2spec_tf.synthetic import phantom
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.training.config import TrainConfig
from cmri2spec_tf.training.trainer import build_trainer

# configs/paper.cfg's run (tests/test_bench.py checks they agree): leave-one-subject-out over 63
# subjects with 100 windows each, every training example once per epoch as a pair's first member.
PAPER_TRAINING_SUBJECTS, PAPER_EPOCHS = 62, 30
PAPER_WINDOWS = SpecParams().windows_per_recording  # 100


def emit(metric: str, value, unit: str) -> None:
  print(json.dumps({"metric": metric, "value": value, "unit": unit}), flush=True)


def synthetic_batch(batch: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  return {"mri_a": rng.random((batch, 26, 128, 128, 1), np.float32),
          "spec_a": rng.random((batch, 64, 64, 1), np.float32),
          "mri_b": rng.random((batch, 26, 128, 128, 1), np.float32),
          "spec_b": rng.random((batch, 64, 64, 1), np.float32),
          "same_word": (np.arange(batch) % 2 == 0).astype(np.float32)}


class StepClock(keras.callbacks.Callback):
  """Times the training batches that follow the first `warmup` ones."""

  def __init__(self, warmup: int):
    super().__init__()
    self.warmup, self.seen, self.started, self.stopped = warmup, 0, None, None

  def on_train_batch_end(self, batch, logs=None):
    self.seen += 1
    if self.seen == self.warmup:
      self.started = time.perf_counter()
    self.stopped = time.perf_counter()


def paper_trainer(precision: str, jit: bool):
  """The trainer with the paper's configured loss weights and optimizers (config.TrainConfig)."""
  config = TrainConfig(data_dir="", model_dir="")
  return build_trainer(pair_disentangle=config.pair_disentangle, gan=config.gan,
                       beta=config.beta, lam=config.lam, translator_lr=config.translator_lr,
                       discriminator_lr=config.discriminator_lr, adam_beta_1=config.adam_beta_1,
                       jit="on" if jit else "off", precision=precision)


def trainer_step_timer(batch: int, steps: int, jit: bool, precision: str):
  """A function timing `steps` batches of the real trainer's fit on repeated synthetic pairs
  (2 warm-up batches per call excluded); returns samples/s."""
  warmup = 2
  trainer = paper_trainer(precision, jit)
  pairs = tf.data.Dataset.from_tensors(synthetic_batch(batch)).repeat(warmup + steps)

  def timed() -> float:
    clock = StepClock(warmup)
    trainer.fit(pairs, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return 2 * batch * steps / (clock.stopped - clock.started)

  return timed


def bare_step_timer(batch: int, steps: int, jit: bool, precision: str):
  """The reference: the same trainer's train_step (eqs. 1-6, both updates) as one plain
  tf.function, no Keras fit. Returns a function timing `steps` steps (after 2 warm-up steps);
  samples/s."""
  trainer = paper_trainer(precision, jit)
  step = tf.function(trainer.train_step, jit_compile=jit)
  data = {k: tf.constant(v) for k, v in synthetic_batch(batch).items()}

  def timed() -> float:
    for _ in range(2):
      step(data)["loss"].numpy()
    start = time.perf_counter()
    for _ in range(steps):
      result = step(data)
    result["loss"].numpy()
    return 2 * batch * steps / (time.perf_counter() - start)

  return timed


def best_of_interleaved(timers: dict, rounds: int) -> dict:
  """Each timer's best result over `rounds` rounds that alternate between them, so that a
  slow spell of a shared machine does not land on one side only (noise only slows things)."""
  best = {name: 0.0 for name in timers}
  for _ in range(rounds):
    for name, timed in timers.items():
      best[name] = max(best[name], timed())
  return best


def paper_fold_seconds(samples_per_s: float) -> float:
  """Training time of one configs/paper.cfg run: 2 samples (MRI sequences) per pair."""
  return 2 * PAPER_TRAINING_SUBJECTS * PAPER_WINDOWS * PAPER_EPOCHS / samples_per_s


def pipeline_examples_per_s(batch: int, n_batches: int = 200) -> float:
  """The real path: phantom files -> cache -> ArrayDataset -> pairs_dataset batches."""
  with tempfile.TemporaryDirectory() as tmp:
    phantom.generate(os.path.join(tmp, "data"), 3, 2, seed=0, workers=1)
    data = dataset.load_dataset(os.path.join(tmp, "data"), cache_dir=os.path.join(tmp, "cache"),
                                verbose=False)
    batches = pairs.pairs_dataset(data, batch, seed=0).repeat()
    iterator = iter(batches)
    for _ in range(5):
      next(iterator)
    start = time.perf_counter()
    for _ in range(n_batches):
      next(iterator)
    return 2 * batch * n_batches / (time.perf_counter() - start)


def _median_ms(functions: dict, repeats: int) -> dict:
  """Median wall time (ms) of each function over `repeats` alternating calls, after 3 warm-up
  calls each; every function must return host values."""
  for fn in functions.values():
    for _ in range(3):
      fn()
  times = {name: [] for name in functions}
  for _ in range(repeats):
    for name, fn in functions.items():
      times[name].append(_timed(fn))
  return {name: float(np.median(t)) * 1000 for name, t in times.items()}


def conv_gflop(model: keras.Model) -> float:
  """Multiply-adds x 2 of the model's convolutions for one input (batch 1), in GFLOP."""
  return 2 * _conv_multiply_adds(model) / 1e9


def _conv_multiply_adds(model: keras.Model) -> int:
  total = 0
  for layer in model.layers:
    if isinstance(layer, keras.Model):  # the encoder and decoder inside the translator
      total += _conv_multiply_adds(layer)
    elif isinstance(layer, keras.layers.Conv2DTranspose):  # each input pixel writes a kernel patch
      total += np.prod(layer.input.shape[1:]) * np.prod(layer.kernel_size) * layer.filters
    elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv3D)):
      total += np.prod(layer.output.shape[1:]) * np.prod(layer.kernel_size) * layer.input.shape[-1]
  return int(total)


def matmul_gflop_per_s(n: int = 2048) -> float:
  """Best of 5 float32 n x n matmuls (an idea of the cores' peak under TensorFlow)."""
  a = tf.random.uniform([n, n])
  product = tf.function(lambda a: tf.reduce_sum(tf.matmul(a, a)))
  product(a).numpy()
  best = min(_timed(lambda: product(a).numpy()) for _ in range(5))
  return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def inference_ms(repeats: int, precision: str) -> dict:
  """Keras translator at batch 1 and 8, and the same weights as an exported SavedModel."""
  translator = build_trainer(gan=False, precision=precision).inference_model()
  x1, x8 = (np.random.default_rng(0).random((n, 26, 128, 128, 1), np.float32) for n in (1, 8))
  figures = _median_ms({"infer_ms_batch8": lambda: translator.predict_on_batch(x8)},
                       max(3, repeats // 4))
  with tempfile.TemporaryDirectory() as tmp:
    export_dir = savedmodel.save(translator, SpecParams(), os.path.join(tmp, "1"))
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    x1_tensor = tf.constant(x1)
    figures.update(_median_ms(
        {"infer_ms_batch1": lambda: translator.predict_on_batch(x1),
         "savedmodel_infer_ms_batch1": lambda: signature(mri=x1_tensor)["spectrogram"].numpy()},
        repeats))
  figures["infer_gflop_batch1"] = conv_gflop(translator)
  figures["infer_gflop_per_s"] = figures["infer_gflop_batch1"] / figures["infer_ms_batch1"] * 1000
  return figures


def vocoder_ms(repeats: int) -> dict:
  """Median ms to voice one second of audio: Griffin-Lim (32 iterations) and the vocoder."""
  from cmri2spec_tf.speech import vocoders
  from cmri2spec_tf.data.spectrogram import mel_power, normalize_power
  from cmri2spec_tf.models.vocoder import build_vocoder

  params = SpecParams()
  t = np.arange(params.sample_rate) / params.sample_rate
  signal = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 30)) * 0.05
  spectrogram = normalize_power(mel_power(signal, params), params)  # [64, 68]
  neural = vocoders.NeuralVocoder(build_vocoder(params), params, "untrained")  # same compute
  griffin_lim = vocoders.GriffinLim(params)
  return _median_ms({"griffin_lim_ms_per_audio_s": lambda: griffin_lim(spectrogram),
                     "vocoder_ms_per_audio_s": lambda: neural(spectrogram)},
                    max(3, repeats // 4))


def peak_rss_mb() -> float:
  """This process's peak resident memory (VmHWM; ru_maxrss would count a parent's across exec)."""
  try:
    with open("/proc/self/status") as f:
      return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
  except (OSError, StopIteration):
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(precision: str, batch: int, jit: bool, steps: int, rounds: int, repeats: int) -> None:
  """Measures and prints every figure (the module docstring lists them)."""
  emit("machine", machine.description(), "text")
  emit("precision", precision + (" + XLA" if jit else ""), "text")
  speeds = best_of_interleaved(
      {"train": trainer_step_timer(batch, steps, jit, precision),
       "bare": bare_step_timer(batch, steps, jit, precision)}, rounds)
  train, bare = speeds["train"], speeds["bare"]
  emit("train_samples_per_s", round(train, 2), "samples/s")
  emit("bare_step_samples_per_s", round(bare, 2), "samples/s")
  emit("train_vs_bare", round(train / bare, 3), "ratio")
  emit("paper_fold_hours", round(paper_fold_seconds(train) / 3600, 2), "h")
  pipeline = pipeline_examples_per_s(batch)
  emit("pipeline_examples_per_s", round(pipeline, 1), "examples/s")
  emit("pipeline_vs_train", round(pipeline / train, 1), "ratio")
  units = {"infer_gflop_batch1": "GFLOP", "infer_gflop_per_s": "GFLOP/s"}
  for name, value in inference_ms(repeats, precision).items():
    emit(name, round(value, 2), units.get(name, "ms"))
  voicing = vocoder_ms(repeats)
  for name, value in voicing.items():
    emit(name, round(value, 1), "ms")
  emit("vocoder_vs_griffin_lim", round(voicing["vocoder_ms_per_audio_s"]
                                       / voicing["griffin_lim_ms_per_audio_s"], 3), "ratio")
  emit("matmul_gflop_per_s", round(matmul_gflop_per_s(), 1), "GFLOP/s")
  emit("peak_rss_mb", round(peak_rss_mb(), 1), "MB")
