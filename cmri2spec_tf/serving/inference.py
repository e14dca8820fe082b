"""A trained translator in use: load it from a run folder or an export, translate MRI, turn the
spectrograms into dB and sound, write them as files (the `predict` command's work).

  import cmri2spec_tf
  model = cmri2spec_tf.load("runs/demo")            # or an export: "serving/cmri2spec/1"
  spectrogram = model.predict("scans/S01/mri")      # a DICOM series, or an array
  waveform = model.to_audio(spectrogram)            # Griffin-Lim, model.params.sample_rate Hz
  model = cmri2spec_tf.load("runs/demo", vocoder="runs/vocoder")   # to_audio by the vocoder
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from cmri2spec_tf.base import progress
from cmri2spec_tf.data.spectrogram import SpecParams, normalized_to_db, overlap_add

BATCH_SIZE = 8


class Translator:
  """MRI -> normalized mel spectrograms [64, 64] (mel bins bottom-up x time), with the
  spectrogram parameters (`params`) of the data it was trained on, and the vocoder that
  `to_audio` uses (speech/vocoders.py: Griffin-Lim unless a neural vocoder is given)."""

  def __init__(self, translate, params: SpecParams, source: str, vocoder=None, model=None):
    from cmri2spec_tf.speech import vocoders

    self._translate, self.params, self.source = translate, params, source
    self.vocoder = vocoder or vocoders.GriffinLim(params)
    self.model = model  # the Keras translator, where it was loaded from a run folder

  def __repr__(self) -> str:
    return f"Translator({self.source!r})"

  def predict(self, mri) -> np.ndarray:
    """One series -> [64, 64]; a batch -> [B, 64, 64].

    `mri`: a path to any MRI source training reads (a DICOM series folder or file, a video, a
    folder of image frames, a .npy/.npz array, FILE.h5:/dataset; data/sources.py), or an array
    in [0, 1] of [26, 128, 128] (one series), [B, 26, 128, 128] or [B, 26, 128, 128, 1].
    """
    if isinstance(mri, (str, os.PathLike)):
      return self.predict(read_series([os.fspath(mri)])[0])
    mri = np.asarray(mri, np.float32)
    single = mri.ndim == 3 or (mri.ndim == 4 and mri.shape[-1] == 1)
    batch = mri[None] if single else mri
    if batch.ndim == 4:
      batch = batch[..., None]
    if batch.shape[1:] != (26, 128, 128, 1):
      raise ValueError(f"mri must be [26, 128, 128] or [B, 26, 128, 128(, 1)], got {mri.shape}")
    out = np.concatenate([self._translate(batch[i:i + BATCH_SIZE])
                          for i in range(0, len(batch), BATCH_SIZE)])
    return out[0] if single else out

  def explain(self, mri, masks: str | None = None, steps: int = 32) -> dict:
    """Where in the images the prediction comes from (evaluation/attribution.py): {"maps":
    {target: float32 [26, 128, 128]} (integrated gradients for the whole spectrogram, each band
    group and each time third), "mri": the input [26, 128, 128]}, and with a masks.npz (given, or
    the phantom's beside the source) "shares" and "occlusion" (lists of rows). Needs a run
    folder's Keras model (gradients), not an export."""
    from cmri2spec_tf.evaluation import attribution, explaining

    if self.model is None:
      raise ValueError(f"{self.source}: explain needs a training run's folder (an export or a "
                       "served model gives no gradients)")
    if isinstance(mri, (str, os.PathLike)):
      example = explaining.single_example(os.fspath(mri), masks, None)
      frames, found = example.mri, example.masks
    else:
      frames = np.asarray(mri, np.float32).reshape(26, 128, 128)
      found = attribution.read_masks(masks) if masks else None
    maps = attribution.integrated_gradients(self.model, frames,
                                            attribution.target_masks(self.params), steps)
    out = {"maps": maps, "mri": frames}
    if found is not None:
      predict = lambda batch: self.predict(batch)
      out["shares"] = attribution.attribution_shares(maps, found)
      out["occlusion"] = attribution.occlusion_table(predict, frames, found, self.params)
    return out

  def to_db(self, spectrogram: np.ndarray) -> np.ndarray:
    """The normalized spectrogram in dB (ref 1), the inverse of the training normalization."""
    return normalized_to_db(np.asarray(spectrogram, np.float32), self.params)

  def to_audio(self, spectrogram: np.ndarray) -> np.ndarray:
    """One [64, 64] spectrogram -> waveform (by `vocoder`), window_samples at sample_rate; a
    whole recording's [64, N] -> (N - 1) x hop_length samples."""
    return self.vocoder(np.asarray(spectrogram, np.float32))

  def predict_recording(self, entry: str, hop_s: float = 0.25, clip_s: float | None = None,
                        frame_rate: float | None = None) -> np.ndarray:
    """Continuous synthesis of a long recording (video, frames, array, HDF5; sources.py):
    [64, N], mel frames every hop_length samples from the recording's first frame.

    Clips of `clip_s` seconds (default: one window, window_samples / sample_rate, the span a
    cine series covers) start every `hop_s` seconds from the recording's first frame (on its
    clock: a video's may lie after 0, `recording_info`), the last one aligned to its last frame;
    each is read as a segment (26 frames) and translated into one window, and the windows are
    overlap-added where they lie on the mel-frame timeline (frame j at sample j x hop after the
    first frame), averaging where they overlap.
    """
    from cmri2spec_tf.data import sources

    params = self.params
    clip_s = clip_s or params.window_samples / params.sample_rate
    info = recording_info(entry, frame_rate)
    rate = frame_rate or info.frame_rate
    first = info.start_s or 0.0
    duration = (info.frames - 1) / rate  # from the first frame's time to the last one's
    if duration < clip_s:  # one utterance, as a cine series: one window
      return self.predict(sources.read_mri(entry, rate).frames)
    starts = list(np.arange(0.0, duration - clip_s + 1e-9, hop_s))
    if duration - clip_s - starts[-1] > 1e-6:
      starts.append(duration - clip_s)
    windows = self.predict(np.stack(list(sources.read_segments(
        entry, rate, [(first + t, first + t + clip_s) for t in starts]))))
    total = int(round(duration * params.sample_rate / params.hop_length)) + 1
    return overlap_add(starts, windows, params, total)


def recording_info(entry: str, frame_rate: float | None = None):
  """A long recording's CineInfo (frames, frame rate, its first frame's time and its duration
  on its clock), reading next to nothing: a sliver at its first frame."""
  from cmri2spec_tf.data import sources

  first, _ = sources.recording_span_of(entry, frame_rate)
  first = first or 0.0
  return sources.read_mri(entry, frame_rate, segment=(first, first + 1e-3)).info


def load(path: str, weights: str = "best", vocoder: str | None = None) -> Translator:
  """A Translator from a training run's model_dir (its `weights`: best or last epoch) or from an
  exported SavedModel version folder; `vocoder`: a vocoder folder for `to_audio` (Griffin-Lim
  when None)."""
  from cmri2spec_tf.training import runs
  from cmri2spec_tf.serving import savedmodel
  from cmri2spec_tf.speech import vocoders

  if savedmodel.is_export(path):
    translate, params = savedmodel.load_export(path)
    return Translator(translate, params, path, vocoders.from_flag(vocoder, params))
  if os.path.exists(runs.path(path, runs.CONFIG_JSON)):
    translator, params, _ = runs.load_translator(path, weights)
    return Translator(lambda mri: np.asarray(translator.predict_on_batch(mri))[..., 0], params,
                      path, vocoders.from_flag(vocoder, params), model=translator)
  raise FileNotFoundError(f"{path}: neither a training run's model_dir ({runs.CONFIG_JSON}) nor "
                          "an exported SavedModel (saved_model.pb)")


def load_params(path: str) -> SpecParams:
  """The spectrogram parameters of a run folder or an export, without loading the model."""
  from cmri2spec_tf.training import runs
  from cmri2spec_tf.serving import savedmodel

  if savedmodel.is_export(path):
    return savedmodel.export_params(path)
  return runs.load_spec_params(path)


def remote(url: str, params: SpecParams | None = None,
           signature: str = "serving_default") -> Translator:
  """A Translator whose predictions come from TF Serving's REST API at `url`
  (http://HOST:8501/v1/models/NAME). `params`: the export's assets/spec_params.json (the
  package's defaults, the fixed normalization every run uses, when None)."""
  from cmri2spec_tf.serving import savedmodel

  def translate(batch: np.ndarray) -> np.ndarray:
    request = savedmodel.rest_request(batch, signature)
    return savedmodel.rest_predictions(savedmodel.post_predict(url, request))

  return Translator(translate, params or SpecParams(), url)


def read_series(series: list[str]) -> np.ndarray:
  """float32 [N, 26, 128, 128]; raises DatasetProblems listing every unreadable series."""
  from cmri2spec_tf.data import sources
  from cmri2spec_tf.data.problems import read_every

  frames = read_every(series, lambda path: sources.read_mri(path).frames)
  return np.stack(frames) if frames else np.zeros((0, 26, 128, 128), np.float32)


# ------------------------------------------------------------------ the predict command's files
def list_series(mri: str, batch: bool) -> list[str]:
  """The series to translate: `mri` itself, or with `batch` every visible entry of it."""
  if not batch:
    return [mri]
  if not os.path.isdir(mri):
    raise FileNotFoundError(f"{mri}: --batch needs a folder holding one entry per series")
  entries = sorted(os.path.join(mri, e) for e in os.listdir(mri) if not e.startswith("."))
  if not entries:
    raise FileNotFoundError(f"{mri}: empty folder, no series to translate")
  return entries


def output_prefixes(series: list[str], out: str, batch: bool) -> list[str]:
  if not batch:
    return [out]
  return [os.path.join(out, os.path.splitext(os.path.basename(s.rstrip(os.sep)))[0])
          for s in series]


def write_outputs(model: Translator, prefix: str, spectrogram: np.ndarray, title: str) -> None:
  """PREFIX.npy, PREFIX.png, PREFIX.wav, each written atomically (a window, or a whole
  recording's [64, N])."""
  import soundfile

  from cmri2spec_tf.base import atomic
  from cmri2spec_tf.speech import plots

  params = model.params
  with atomic.atomic_path(prefix + ".npy", suffix=".npy") as tmp:
    np.save(tmp, spectrogram.astype(np.float32))
  width = spectrogram.shape[-1]
  seconds = None if width == params.n_mels else (width - 1) * params.hop_length / params.sample_rate
  atomic.write_bytes(prefix + ".png", plots.spectrogram_row_png(
      {"predicted mel spectrogram": spectrogram}, params, title=title, seconds=seconds))
  with atomic.atomic_path(prefix + ".wav", suffix=".wav") as tmp:
    soundfile.write(tmp, model.to_audio(spectrogram), model.params.sample_rate, subtype="PCM_16")


@dataclasses.dataclass(frozen=True)
class Continuous:
  """How long recordings (not DICOM cine series) are translated (`predict_recording`)."""

  hop_s: float = 0.25
  clip_s: float | None = None
  frame_rate: float | None = None


def predict_files(model: str | Translator, mri: str, out: str, batch: bool,
                  continuous: Continuous = Continuous(),
                  vocoder: str | None = None) -> list[tuple[str, np.ndarray]]:
  """Reads every series (nothing is written if one is bad), translates with `model` (a
  Translator, or a path for `load`, loaded once the series are read): a DICOM cine series
  into one window, any other source by continuous synthesis over its whole length; writes the
  files of each (the sound by `vocoder`, a vocoder folder, or Griffin-Lim); returns (output
  prefix, spectrogram) of each."""
  from cmri2spec_tf.data import sources

  series = list_series(mri, batch)
  prefixes = output_prefixes(series, out, batch)
  cines = [s for s in series if sources.kind_of(s) == "dicom"]
  recordings = [s for s in series if s not in cines]
  inputs = read_series(cines)
  check_recordings(recordings, continuous.frame_rate)
  if not isinstance(model, Translator):
    model = load(model, vocoder=vocoder)
  bar = progress.Progress("series", len(series)) if batch else None
  results = {}
  for start in range(0, len(cines), BATCH_SIZE):
    results.update(zip(cines[start:start + BATCH_SIZE],
                       model.predict(inputs[start:start + BATCH_SIZE])))
    if bar:
      bar.update(len(results))
  for path in recordings:
    results[path] = model.predict_recording(path, continuous.hop_s, continuous.clip_s,
                                            continuous.frame_rate)
    if bar:
      bar.update(len(results))
  if bar:
    bar.close()
  for path, prefix in zip(series, prefixes):
    title = os.path.join(*os.path.abspath(path).split(os.sep)[-2:])  # e.g. S01/mri
    write_outputs(model, prefix, results[path], title=title)
  return [(prefix, results[path]) for path, prefix in zip(series, prefixes)]


def check_recordings(recordings: list[str], frame_rate: float | None) -> None:
  """Every long recording opens and has a frame rate; DatasetProblems listing those that do
  not (before anything is written)."""
  from cmri2spec_tf.data.problems import DataError, DatasetProblems

  problems = []
  for path in recordings:
    try:
      info = recording_info(path, frame_rate)
      if (frame_rate or info.frame_rate) is None:
        raise DataError(path, "continuous synthesis needs its frame rate: give --frame_rate")
    except DataError as e:
      problems.append(e.problem)
  if problems:
    raise DatasetProblems(problems)


def l1_against_audio(spectrogram: np.ndarray, audio_path: str, params: SpecParams,
                     first_frame_s: float = 0.0) -> float:
  """Mean |true - predicted| over the frames both have: the recording's own normalized mel
  spectrogram (same parameters) against a continuous prediction whose frame j lies j x hop
  after `first_frame_s` (the MRI's first frame, `recording_info`) on the clock the audio's
  first sample is placed on by its own start (a video's sound track may start later)."""
  from cmri2spec_tf.data import audio
  from cmri2spec_tf.data.spectrogram import mel_power, normalize_power

  sound = audio.read_audio(audio_path)
  lead = int(round((first_frame_s - sound.start_s) * params.sample_rate))  # audio before the MRI
  skipped = -(min(0, lead) // params.hop_length)  # prediction frames before the audio begins
  waveform = sound.waveform[lead + skipped * params.hop_length:]
  truth = normalize_power(mel_power(waveform, params), params)
  predicted = spectrogram[:, skipped:]
  n = min(truth.shape[-1], predicted.shape[-1])
  return float(np.abs(truth[:, :n] - predicted[:, :n]).mean())
