"""From a normalized mel spectrogram to sound: Griffin-Lim (the default) or the project's neural
vocoder (models/vocoder.py), and training that vocoder on a dataset's audio (the `vocoder`
command's work).

  vocoder = vocoders.load("runs/vocoder")          # or vocoders.GriffinLim()
  waveform = vocoder(spectrogram)                   # [64, 64] -> window_samples at 22,050 Hz

A vocoder folder holds vocoder.keras (the generator) and vocoder.json (its spectrogram
parameters, architecture and how it was trained). Training reads the audio of the training
subjects of one fold (--split/--fold as the translator's run, so its held-out subjects are never
heard) and fits random crops of `crop_frames` mel frames to their waveform with the
multi-resolution STFT and log-mel losses (losses.py): no discriminator, which is what makes it
train in minutes on a CPU (Parallel WaveGAN's ablation shows the STFT losses alone give a usable
vocoder; Vocos and HiFi-GAN add a GAN for the last bit of naturalness).

Fine-tuning (`--finetune_on=RUN`, experiments/vocoder_finetuning.py) gives it, instead of each
recording's own mel spectrogram, the translator's prediction of it on the same frame grid, with
the real waveform as the target (as HiFi-GAN is fine-tuned on Tacotron 2's ground-truth-aligned
predictions): the vocoder learns to voice what the translator actually outputs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import numpy as np

from cmri2spec_tf.base import numba_cache
from cmri2spec_tf.base.errors import ConfigError
from cmri2spec_tf.data.spectrogram import (SpecParams, mel_power, normalize_power, samples_for,
                                           waveform_from_normalized)

VOCODER_KERAS, VOCODER_JSON = "vocoder.keras", "vocoder.json"
GRIFFIN_LIM_ITERATIONS = 32


class GriffinLim:
  """Griffin-Lim (librosa) of the mel spectrogram's least-squares linear magnitude."""

  name = "griffin_lim"

  def __init__(self, params: SpecParams = SpecParams(), n_iter: int = GRIFFIN_LIM_ITERATIONS):
    self.params, self.n_iter = params, n_iter

  def __call__(self, spectrogram: np.ndarray) -> np.ndarray:
    """[64, N] (or [64, 64, 1]) normalized -> float32 waveform of `samples_for` samples."""
    spectrogram = np.asarray(spectrogram, np.float32).reshape(self.params.n_mels, -1)
    return waveform_from_normalized(spectrogram, self.params, n_iter=self.n_iter)

  def many(self, spectrograms) -> list[np.ndarray]:
    return [self(s) for s in spectrograms]


class NeuralVocoder:
  """The trained generator of a vocoder folder."""

  name = "vocoder"

  def __init__(self, model, params: SpecParams, source: str):
    self.model, self.params, self.source = model, params, source

  def __repr__(self) -> str:
    return f"NeuralVocoder({self.source!r})"

  def __call__(self, spectrogram: np.ndarray) -> np.ndarray:
    spectrogram = np.asarray(spectrogram, np.float32).reshape(self.params.n_mels, -1)
    return self.many(spectrogram[None])[0]

  def many(self, spectrograms) -> list[np.ndarray]:
    """[K, 64, N] of equal width -> K waveforms of `samples_for` samples, in one batch."""
    batch = np.asarray(spectrograms, np.float32).reshape(len(spectrograms), self.params.n_mels, -1)
    waveforms = np.asarray(self.model.predict_on_batch(np.transpose(batch, (0, 2, 1))))
    length = samples_for(batch[0], self.params)
    waveforms = np.pad(waveforms, ((0, 0), (0, max(0, length - waveforms.shape[1]))))
    return [w[:length].astype(np.float32) for w in waveforms]


def is_vocoder(folder: str) -> bool:
  return os.path.isfile(os.path.join(folder, VOCODER_KERAS))


def load(folder: str) -> NeuralVocoder:
  """The vocoder in `folder` (vocoder.keras + vocoder.json); FileNotFoundError naming it."""
  from cmri2spec_tf.models import vocoder as vocoder_model  # noqa: F401 (registers the head)

  if not is_vocoder(folder):
    raise FileNotFoundError(f"{folder}: not a vocoder folder (no {VOCODER_KERAS}; train one with "
                            "python -m cmri2spec_tf.vocoder)")
  with open(os.path.join(folder, VOCODER_JSON)) as f:
    params = SpecParams(**json.load(f)["spec_params"])
  model = keras.models.load_model(os.path.join(folder, VOCODER_KERAS), compile=False)
  return NeuralVocoder(model, params, folder)


def from_flag(folder: str | None, params: SpecParams = SpecParams()):
  """A `--vocoder=DIR` value: the neural vocoder in DIR, or Griffin-Lim when None/empty. The
  vocoder must have been trained with the translator's spectrogram parameters."""
  if not folder:
    return GriffinLim(params)
  vocoder = load(folder)
  if vocoder.params != params:
    raise ConfigError(f"--vocoder={folder}: the vocoder was trained on other spectrogram "
                      "parameters than the model's")
  return vocoder


# ------------------------------------------------------------------ training (the command's work)
@dataclasses.dataclass
class VocoderConfig:
  """What defines a vocoder training run."""

  data_dir: str
  model_dir: str
  split: str = "loso"
  fold: int = 0
  split_seed: int = 0
  seed: int = 0
  epochs: int = 20
  steps_per_epoch: int = 100
  batch_size: int = 16
  crop_frames: int = 48
  channels: int = 128
  blocks: int = 4
  learning_rate: float = 5e-4
  mel_weight: float = 1.0
  speeds: tuple[float, ...] = (0.85, 0.92, 1.0, 1.08, 1.15)
  gain_db: float = 6.0
  verbose: int = 1
  finetune_on: str = ""  # a translator run: learn from its predicted spectrograms
  init_from: str = ""  # a vocoder folder whose weights a new vocoder starts from


@dataclasses.dataclass
class Material:
  """What a vocoder learns from: waveforms of the training subjects, and the mel spectrograms
  [frames, 64] it is given for them on their frame grid (frame j at sample j x hop), or None:
  each waveform's own, at every --speeds."""

  waveforms: list[np.ndarray]
  subjects: list[str]
  mels: list[np.ndarray] | None = None
  spectrograms: str = "the audio's own mel spectrograms"


def training_audio(config: VocoderConfig, params: SpecParams) -> tuple[list[np.ndarray], list[str]]:
  """(waveforms, subjects): each distinct audio file of the fold's training subjects, once."""
  from cmri2spec_tf.data import audio, manifest, splits
  from cmri2spec_tf.data.problems import DatasetProblems, read_every

  records, problems = manifest.read_manifest(config.data_dir)
  if problems:
    raise DatasetProblems(problems)
  fold = splits.select_fold([r.subject_id for r in records], [r.word for r in records],
                            config.split, config.fold, config.split_seed)
  train = set(fold.train)
  files = list(dict.fromkeys(r.audio for r in records if r.subject_id in train))
  waveforms = read_every(files, lambda file: audio.read_audio(file).waveform)
  crop = (config.crop_frames - 1) * params.hop_length
  short = [f for f, w in zip(files, waveforms) if len(w) < crop]
  if len(short) == len(files):
    raise ConfigError(f"every training recording is shorter than one crop ({crop} samples): "
                      "lower --crop_frames")
  return waveforms, sorted(train)


def augmented(waveforms: list[np.ndarray], speeds, sample_rate: int) -> list[np.ndarray]:
  """Each recording played at each speed (resampled: a speed s scales F0, the formants and the
  tempo by s, as another speaker's voice would): a few dozen subjects' audio covers more voices,
  which is what a vocoder needs to generalize to subjects it never heard."""
  librosa = numba_cache.librosa()

  return [w if speed == 1.0 else librosa.resample(w, orig_sr=sample_rate * speed,
                                                  target_sr=sample_rate)
          for w in waveforms for speed in speeds]


def crop_batches(waveforms: list[np.ndarray], params: SpecParams, config: VocoderConfig,
                 mels: list[np.ndarray] | None = None):
  """An endless tf.data.Dataset of (mel [B, crop_frames, 64], waveform [B, (crop_frames - 1) x
  hop]): random crops, deterministic for the seed, each at a random gain within +-gain_db (the
  normalized mel shifted by the same dB). Mel frames come from the whole recording (librosa,
  centred), so crop frame j is recording frame f0 + j and sits at sample j x hop of the
  waveform crop. `mels`: each waveform's given [frames, 64] on that grid instead (predictions:
  played at one speed, as they were predicted)."""
  import tensorflow as tf

  if mels is None:
    waveforms = augmented(waveforms, config.speeds, params.sample_rate)
    mels = [normalize_power(mel_power(w, params), params).T for w in waveforms]
  usable = [i for i, m in enumerate(mels) if len(m) >= config.crop_frames]
  hop, frames = params.hop_length, config.crop_frames
  samples = (frames - 1) * hop

  def generate():
    rng = np.random.default_rng(config.seed)
    while True:
      i = usable[rng.integers(len(usable))]
      first = int(rng.integers(len(mels[i]) - frames + 1))
      waveform = waveforms[i][first * hop:first * hop + samples]
      gain_db = rng.uniform(-config.gain_db, config.gain_db)
      mel = np.clip(mels[i][first:first + frames] + gain_db / (params.db_max - params.db_min), 0, 1)
      yield mel, np.pad(waveform * 10 ** (gain_db / 20), (0, samples - len(waveform)))

  signature = (tf.TensorSpec([frames, params.n_mels], tf.float32),
               tf.TensorSpec([samples], tf.float32))
  return (tf.data.Dataset.from_generator(generate, output_signature=signature)
          .batch(config.batch_size, drop_remainder=True).prefetch(2))


def vocoder_loss(params: SpecParams, mel_weight: float):
  """Keras loss (waveform, waveform_hat) -> [B]: multi-resolution STFT + mel_weight x log-mel L1."""
  librosa = numba_cache.librosa()
  import tensorflow as tf

  from cmri2spec_tf.speech import losses

  mel_matrix = tf.constant(librosa.filters.mel(
      sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels, fmin=params.fmin,
      fmax=params.fmax).T, tf.float32)

  def loss(waveform, waveform_hat):
    waveform_hat = tf.cast(waveform_hat, tf.float32)
    return (losses.multi_resolution_stft(waveform, waveform_hat)
            + mel_weight * losses.log_mel_l1(waveform, waveform_hat, mel_matrix, params.n_fft,
                                             params.hop_length))

  return loss


def train(config: VocoderConfig, params: SpecParams = SpecParams(),
          material: Material | None = None) -> dict:
  """Trains (or goes on training) the vocoder in config.model_dir on `material` (default: the
  fold's training audio, training_audio); returns its vocoder.json."""
  from cmri2spec_tf.base import atomic

  keras.utils.set_random_seed(config.seed)
  if material is None:
    material = Material(*training_audio(config, params))
  previous = check_model_dir(config)
  os.makedirs(config.model_dir, exist_ok=True)
  atomic.remove_stale_temporaries(config.model_dir)
  model = starting_model(config, params, previous)
  earlier = previous or (read_info(config.init_from) if config.init_from else None) or {}
  if earlier:  # the architecture is the one it starts from, whatever the flags say
    config = dataclasses.replace(config, **{key: earlier["config"][key]
                                            for key in ("channels", "blocks")})
  model.compile(keras.optimizers.Adam(config.learning_rate, beta_1=0.8, beta_2=0.99),
                loss=vocoder_loss(params, config.mel_weight), jit_compile=False)
  waveforms, subjects = material.waveforms, material.subjects
  seconds = sum(len(w) for w in waveforms) / params.sample_rate
  print(f"vocoder: {len(waveforms)} recordings ({seconds:.1f} s of audio) of {len(subjects)} "
        f"training subjects (split {config.split}, fold {config.fold}), voicing "
        f"{material.spectrograms}; {config.epochs} epochs x {config.steps_per_epoch} steps of "
        f"{config.batch_size} crops of {config.crop_frames} frames; {model.count_params():,} "
        "parameters")
  started = time.time()
  history = model.fit(
      crop_batches(waveforms, params, config, material.mels), epochs=config.epochs,
      steps_per_epoch=config.steps_per_epoch, verbose=config.verbose, shuffle=False,
      callbacks=[keras.callbacks.TensorBoard(os.path.join(config.model_dir, "logs"),
                                             write_graph=False),
                 keras.callbacks.TerminateOnNaN(), SaveVocoder(config.model_dir)])
  if model.stop_training and not np.isfinite(history.history["loss"][-1]):
    raise RuntimeError("vocoder training stopped: the loss became NaN or infinite; lower "
                       "--learning_rate")
  info = {"spec_params": dataclasses.asdict(params), "config": dataclasses.asdict(config),
          "training_subjects": subjects, "audio_seconds": seconds,
          "spectrograms": material.spectrograms,
          "stages": earlier.get("stages", []) + [_stage(config, material)],
          "steps": earlier.get("steps", 0) + config.epochs * config.steps_per_epoch,
          "training_seconds": earlier.get("training_seconds", 0.0)
          + time.time() - started,
          "final_loss": float(history.history["loss"][-1])}
  save(model, info, config.model_dir)
  return info


def check_model_dir(config: VocoderConfig) -> dict | None:
  """vocoder.json of the vocoder model_dir already holds (training goes on from it), or None;
  ConfigError where --init_from names another start as well."""
  previous = read_info(config.model_dir)
  if previous and config.init_from:
    raise ConfigError(f"--init_from={config.init_from}: {config.model_dir} already holds a "
                      "vocoder, which training would go on from; give a new --model_dir")
  return previous


def starting_model(config: VocoderConfig, params: SpecParams, previous: dict | None):
  """The generator to train: the one already in model_dir (going on), else a copy of
  --init_from's (that folder is only read), else a new one."""
  from cmri2spec_tf.models.vocoder import build_vocoder

  if previous:
    print(f"going on from the vocoder in {config.model_dir} ({previous['steps']} steps so far)")
    return load(config.model_dir).model
  if config.init_from:
    source = from_flag(config.init_from, params)  # refuses other spectrogram parameters
    print(f"starting from the vocoder in {config.init_from} (left as it is)")
    return source.model  # read from its file: training it leaves the folder as it is
  return build_vocoder(params, config.channels, config.blocks)


def _stage(config: VocoderConfig, material: Material) -> dict:
  """One of vocoder.json's stages: what one call trained on, from what, and how long."""
  return {"finetune_on": config.finetune_on or None, "init_from": config.init_from or None,
          "spectrograms": material.spectrograms, "subjects": material.subjects,
          "steps": config.epochs * config.steps_per_epoch}


class SaveVocoder(keras.callbacks.Callback):
  """Writes the generator atomically after every epoch (a stopped run keeps its last epoch)."""

  def __init__(self, folder: str):
    super().__init__()
    self.folder = folder

  def on_epoch_end(self, epoch, logs=None):
    save_model(self.model, self.folder)


def save_model(model, folder: str) -> None:
  from cmri2spec_tf.base import atomic

  with atomic.atomic_path(os.path.join(folder, VOCODER_KERAS), suffix=".keras") as tmp:
    model.save(tmp)


def save(model, info: dict, folder: str) -> None:
  from cmri2spec_tf.base import atomic

  save_model(model, folder)
  atomic.write_text(os.path.join(folder, VOCODER_JSON), json.dumps(info, indent=2) + "\n")


def read_info(folder: str) -> dict | None:
  """vocoder.json of a finished vocoder folder, or None."""
  file = os.path.join(folder, VOCODER_JSON)
  if not (os.path.isfile(file) and is_vocoder(folder)):
    return None
  with open(file) as f:
    return json.load(f)
