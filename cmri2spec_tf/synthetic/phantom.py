"""A physically coupled speech-MRI phantom (docs/method.md "The phantom"). Besides the series,
the audio and manifest.csv it writes subjects.csv, every subject's factors (data/factors.py).

One articulatory trajectory per subject drives both modalities:
- Articulators (jaw opening, tongue body height and backness, tongue tip elevation, lip
  rounding, velum elevation) move through the phonemes of "ageese" /@ g i s/ or "asouk"
  /@ s u k/ by smoothed interpolation between phoneme targets; segment durations are jittered
  per subject (timing).
- Images: a mid-sagittal 128 x 128 section (1.87 mm pixels, face to the left) drawn from those
  articulators at 26 frames spread over the utterance, with subject-specific anatomy size (it
  grows with the vocal-tract length) and position, coil shading and Rician noise; written as a real single-frame DICOM MR series.
- Audio: source-filter synthesis at 22,050 Hz. Formants are functions of the articulators
  (F1 rises with jaw opening and tongue lowering, F2 falls with tongue backness and lip
  rounding), scaled by the subject's vocal-tract length; a glottal source with the subject's F0
  (additive harmonics, -6 dB/octave after lip radiation) is shaped by the vocal-tract transfer
  function; frication noise for /s/ grows as the tongue tip nears the alveolar ridge; /g/ and /k/
  close the tract (silence, weak voicing for /g/) and release a burst. Background noise per subject.
  21,832-24,175 samples, as the paper's recordings.
Deterministic for a seed: subject i uses NumPy's generator seeded with (seed, i); UIDs too.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import soundfile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from scipy import ndimage, signal

from cmri2spec_tf.data import factors

SAMPLE_RATE = 22050
N_FRAMES = 26
MATRIX = 128
PIXEL_MM = 1.87
MIN_SAMPLES, MAX_SAMPLES = 21832, 24175
ARTICULATORS = ("jaw", "height", "backness", "tip", "rounding", "velum")

# Articulator targets per phoneme, in ARTICULATORS order, each in [0, 1].
_TARGETS = {
    "rest": (0.20, 0.40, 0.50, 0.20, 0.20, 0.30),
    "@": (0.55, 0.35, 0.50, 0.20, 0.10, 1.00),
    "g": (0.35, 1.00, 0.85, 0.20, 0.10, 1.00),
    "i": (0.20, 0.90, 0.05, 0.35, 0.00, 1.00),
    "s": (0.12, 0.70, 0.30, 1.00, 0.05, 1.00),
    "u": (0.22, 0.85, 0.95, 0.20, 1.00, 1.00),
    "k": (0.30, 1.00, 0.85, 0.20, 0.60, 1.00),
}
# (phoneme, relative duration, voicing, frication, closure); a closure ends with a burst.
_WORDS = {
    "ageese": (("rest", .08, 0, 0, 0), ("@", .17, 1, 0, 0), ("g", .08, .25, 0, 1),
               ("i", .30, 1, 0, 0), ("s", .25, 0, 1, 0), ("rest", .12, 0, 0, 0)),
    "asouk": (("rest", .08, 0, 0, 0), ("@", .16, 1, 0, 0), ("s", .22, 0, 1, 0),
              ("u", .30, 1, 0, 0), ("k", .10, 0, 0, 1), ("rest", .14, 0, 0, 0)),
}
WORDS = tuple(_WORDS)


@dataclasses.dataclass(frozen=True)
class Subject:
  """What makes one phantom speaker different from another."""

  subject_id: str
  word: str
  f0_hz: float
  vocal_tract_cm: float
  anatomy_scale: float
  anatomy_shift_px: tuple[float, float]
  durations: tuple[float, ...]
  n_samples: int
  noise_dbfs: float
  peak: float


def stressed_vowel_index(word: str) -> int:
  """The segment of the word's stressed vowel (/i/ of ageese, /u/ of asouk)."""
  return next(i for i, seg in enumerate(_WORDS[word]) if seg[0] in ("i", "u"))


def make_subject(subject_id: str, word: str, rng: np.random.Generator) -> Subject:
  f0 = float(rng.uniform(85, 250))
  # Longer tracts go with lower voices, with individual spread.
  tract = float(np.clip(19.0 - 0.025 * (f0 - 85) + rng.normal(0, 0.6), 13.0, 19.5))
  base = np.array([seg[1] for seg in _WORDS[word]])
  durations = base * rng.uniform(0.75, 1.25, base.size)
  return Subject(
      subject_id=subject_id, word=word, f0_hz=f0, vocal_tract_cm=tract,
      # A longer vocal tract comes with a bigger head: the images show the formant scaling.
      anatomy_scale=float(np.clip(0.88 + 0.24 * (tract - 13.0) / 6.5 + rng.normal(0, 0.02), 0.85, 1.14)),
      anatomy_shift_px=(float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5))),
      durations=tuple(float(d) for d in durations / durations.sum()),
      n_samples=int(rng.integers(MIN_SAMPLES, MAX_SAMPLES + 1)),
      noise_dbfs=float(rng.uniform(-58, -45)), peak=float(rng.uniform(0.3, 0.7)))


# ---------------------------------------------------------------- articulation over time
def segment_tracks(subject: Subject, times: np.ndarray) -> dict[str, np.ndarray]:
  """Articulators [len(times), 6] and source controls at the given times (seconds)."""
  total = subject.n_samples / SAMPLE_RATE
  segments = _WORDS[subject.word]
  edges = np.concatenate([[0.0], np.cumsum(subject.durations)]) * total
  centres = (edges[:-1] + edges[1:]) / 2
  knots_t = np.concatenate([[0.0], centres, [total]])
  targets = np.array([_TARGETS[s[0]] for s in segments])
  knots = np.concatenate([targets[:1], targets, targets[-1:]])
  fine_t = np.linspace(0.0, total, 2001)
  fine = np.stack([np.interp(fine_t, knots_t, knots[:, j]) for j in range(knots.shape[1])], 1)
  fine = ndimage.gaussian_filter1d(fine, sigma=20, axis=0, mode="nearest")  # ~11 ms
  articulators = np.stack([np.interp(times, fine_t, fine[:, j]) for j in range(fine.shape[1])], 1)
  controls = {}
  for index, name in ((2, "voicing"), (3, "frication"), (4, "closure")):
    steps = np.array([s[index] for s in segments], dtype=float)
    level = steps[np.clip(np.searchsorted(edges, fine_t, side="right") - 1, 0, len(steps) - 1)]
    controls[name] = np.interp(times, fine_t, ndimage.gaussian_filter1d(level, 12, mode="nearest"))
  controls["release_times"] = edges[1:][[s[4] == 1 for s in segments]]
  return {"articulators": articulators, **controls}


def formants_hz(articulators: np.ndarray, vocal_tract_cm: float) -> np.ndarray:
  """F1-F4 [T, 4] from articulators; scaled by 17 cm / vocal-tract length."""
  jaw, height, back, tip, rounding = (articulators[:, j] for j in range(5))
  scale = 17.0 / vocal_tract_cm
  f1 = 200 + 600 * jaw * (1 - 0.5 * height) + 150 * (1 - height)
  f2 = 2400 - 1500 * back - 350 * rounding
  f3 = 2900 - 400 * rounding + 150 * tip
  f4 = np.full_like(f1, 3800.0)
  return np.stack([f1, f2, f3, f4], axis=1) * scale


# ---------------------------------------------------------------- audio
def synthesize_audio(subject: Subject, rng: np.random.Generator) -> np.ndarray:
  """Mono float32 waveform of subject.n_samples at 22,050 Hz."""
  n = subject.n_samples
  t = np.arange(n) / SAMPLE_RATE
  block_t = np.arange(0, n + 110, 110) / SAMPLE_RATE  # 5 ms control rate
  tracks = segment_tracks(subject, block_t)
  formants = formants_hz(tracks["articulators"], subject.vocal_tract_cm)
  f0 = subject.f0_hz * (1.08 - 0.16 * block_t / block_t[-1])  # declination
  f0 = f0 * (1 + 0.01 * rng.standard_normal(block_t.size).cumsum() / np.sqrt(block_t.size))
  voiced = _harmonic_source(t, block_t, f0, formants, rng)
  voiced *= np.interp(t, block_t, tracks["voicing"])
  hiss = _bandpass_noise(n, 4000, 9500, 17.0 / subject.vocal_tract_cm, rng)
  tip_near_ridge = np.clip((tracks["articulators"][:, 3] - 0.6) / 0.35, 0, 1)
  hiss *= np.interp(t, block_t, tracks["frication"] * tip_near_ridge) * 0.35
  bursts = np.zeros(n)
  for release in tracks["release_times"]:
    i0 = int(release * SAMPLE_RATE)
    length = min(int(0.015 * SAMPLE_RATE), n - i0)
    if length > 0:
      decay = np.exp(-np.arange(length) / (0.004 * SAMPLE_RATE))
      bursts[i0:i0 + length] += rng.standard_normal(length) * decay * 0.6
  bursts = _bandpass(bursts, 1200, 4500)
  wave = voiced + hiss + bursts
  wave *= subject.peak / max(np.max(np.abs(wave)), 1e-9)
  wave += rng.standard_normal(n) * 10 ** (subject.noise_dbfs / 20)
  return wave.astype(np.float32)


def _harmonic_source(t, block_t, f0_blocks, formants, rng) -> np.ndarray:
  """Sum of glottal harmonics, each weighted by the vocal-tract response at its frequency."""
  f0 = np.interp(t, block_t, f0_blocks)
  phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
  n_harmonics = int(SAMPLE_RATE / 2 / f0_blocks.min())
  harmonics = np.arange(1, n_harmonics + 1)
  freqs = harmonics[:, None] * f0_blocks[None, :]  # [H, blocks]
  gain = _tract_gain(freqs, formants) / harmonics[:, None]  # -6 dB/oct source + radiation
  gain[freqs >= SAMPLE_RATE / 2 - 200] = 0.0
  out = np.zeros_like(t)
  for h in harmonics:
    out += np.interp(t, block_t, gain[h - 1]) * np.sin(h * phase)
  return out


def _tract_gain(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
  """|H(f)| of four cascaded 2nd-order resonators; freqs [H, T], formants [T, 4]."""
  bandwidths = np.array([80.0, 100.0, 150.0, 220.0])
  w = 2 * np.pi * freqs
  gain = np.ones_like(freqs)
  for k in range(4):
    wk = 2 * np.pi * formants[:, k][None, :]
    bk = 2 * np.pi * bandwidths[k]
    gain *= wk**2 / np.sqrt((wk**2 - w**2) ** 2 + (bk * w) ** 2)
  return gain


def _bandpass(x: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
  high_hz = min(high_hz, SAMPLE_RATE / 2 * 0.95)
  sos = signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=SAMPLE_RATE, output="sos")
  return signal.sosfilt(sos, x)


def _bandpass_noise(n, low_hz, high_hz, scale, rng) -> np.ndarray:
  noise = _bandpass(rng.standard_normal(n), low_hz * scale, high_hz * scale)
  return noise / (np.std(noise) + 1e-12)


# ---------------------------------------------------------------- images
def frame_times(subject: Subject) -> np.ndarray:
  """Acquisition time (s) of each of the 26 frames, spread evenly over the utterance."""
  total = subject.n_samples / SAMPLE_RATE
  return (np.arange(N_FRAMES) + 0.5) * total / N_FRAMES


def render_frames(subject: Subject, rng: np.random.Generator) -> np.ndarray:
  """uint16 [26, 128, 128] mid-sagittal MR magnitude images (12-bit)."""
  return render_articulators(subject, segment_tracks(subject, frame_times(subject))["articulators"],
                             rng)


def render_articulators(subject: Subject, articulators: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
  """uint16 [T, 128, 128]: the subject's anatomy at each row of articulators [T, 6]."""
  x, y, shading = _anatomy_grid(subject)
  frames = np.stack([_draw_anatomy(x, y, a) for a in articulators]) * shading
  sigma = 0.035
  noisy = np.hypot(frames + rng.normal(0, sigma, frames.shape), rng.normal(0, sigma, frames.shape))
  return np.clip(noisy * 3000, 0, 4095).astype(np.uint16)


def render_labels(subject: Subject, articulators: np.ndarray) -> np.ndarray:
  """uint8 [T, 128, 128]: which structure (LABELS) each pixel of each frame shows, drawn with
  the very shapes the images are painted with (a pixel belongs to the last shape painted over
  it at half strength or more)."""
  x, y, _ = _anatomy_grid(subject)
  return np.stack([_label_anatomy(x, y, a) for a in articulators])


def _anatomy_grid(subject: Subject):
  """(x, y) anatomy coordinates of every pixel, and the coil shading."""
  yy, xx = np.mgrid[0:MATRIX, 0:MATRIX].astype(np.float64)
  dx, dy = subject.anatomy_shift_px
  s = subject.anatomy_scale
  x = (xx - 64 - dx) / s + 64  # anatomy coordinates
  y = (yy - 64 - dy) / s + 64
  shading = 0.85 + 0.3 * np.exp(-((xx - 40) ** 2 + (yy - 70) ** 2) / (2 * 60.0**2))
  return x, y, shading


def _ellipse(x, y, cx, cy, rx, ry, soft=1.0):
  """Soft-edged filled ellipse in [0, 1]."""
  r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
  return np.clip((1 - r) * min(rx, ry) / soft + 0.5, 0, 1)


def _capsule(x, y, x0, y0, x1, y1, radius):
  """Soft-edged thick line segment in [0, 1]."""
  vx, vy = x1 - x0, y1 - y0
  u = np.clip(((x - x0) * vx + (y - y0) * vy) / (vx * vx + vy * vy), 0, 1)
  d = np.hypot(x - (x0 + u * vx), y - (y0 + u * vy))
  return np.clip(radius - d + 0.5, 0, 1)


def _paint(image, mask, value):
  return image * (1 - mask) + value * mask


# The label maps' legend (masks.npz): what each value of a pixel is.
LABELS = {0: "air and background", 1: "tongue", 2: "lips", 3: "jaw", 4: "velum",
          5: "pharynx wall", 6: "hard palate", 7: "other tissue"}
ARTICULATOR_LABELS = {"tongue": 1, "lips": 2, "jaw": 3, "velum": 4, "pharynx wall": 5,
                      "hard palate": 6}
PHARYNX_WALL_PX = 3.0  # tissue within this distance of the pharyngeal airway is its wall


def _anatomy_layers(x, y, articulators):
  """The shapes of one frame in painting order: (mask in [0, 1], intensity, label)."""
  jaw, height, back, tip, rounding, velum = articulators
  angle = np.deg2rad(70 - 100 * velum)  # lowered: hangs down; raised: up and back
  velum_end = (72 + 14 * np.cos(angle), 56 + 14 * np.sin(angle))
  tongue_x, tongue_y = 42 + 30 * back, 82 - 18 * height + 8 * jaw
  tip_x, tip_y = tongue_x - 16, tongue_y - 2 - 16 * tip
  jaw_y = 92 + 12 * jaw
  aperture = 1 + 11 * jaw * (1 - 0.6 * rounding)
  lip_x = 17 - 5 * rounding
  return [
      (_ellipse(x, y, 66, 62, 56, 66), 0.45, 7),  # head and neck soft tissue (painted on 0)
      (_ellipse(x, y, 70, 10, 40, 22), 0.6, 7),  # brain above the palate
      (_ellipse(x, y, 52, 46, 22, 7), 0.02, 0),  # nasal cavity
      (_capsule(x, y, 84, 50, 86, 124, 5), 0.02, 0),  # pharynx
      (_ellipse(x, y, 52, 66, 26, 10 + 6 * jaw), 0.02, 0),  # oral cavity
      (_capsule(x, y, 32, 56, 72, 56, 2.0), 0.5, 6),  # hard palate
      (_capsule(x, y, 72, 56, *velum_end, 3.0), 0.5, 4),  # soft palate
      (_ellipse(x, y, tongue_x, tongue_y, 17, 11), 0.75, 1),  # tongue body
      (_capsule(x, y, tongue_x - 8, tongue_y - 2, tip_x, tip_y, 3.5), 0.75, 1),  # tongue tip
      (_capsule(x, y, 28, jaw_y, 70, jaw_y - 6, 4), 0.95, 3),  # mandible marrow
      (_ellipse(x, y, lip_x, 62 - aperture / 2 - 5, 7, 5), 0.5, 2),  # upper lip
      (_ellipse(x, y, lip_x, 62 + aperture / 2 + 5 + 6 * jaw, 7, 5), 0.5, 2),  # lower lip
  ]


def _draw_anatomy(x, y, articulators) -> np.ndarray:
  """One frame: head tissue, airways, palate, velum, tongue, jaw and lips (intensity ~[0, 1])."""
  (head, value, _), *rest = _anatomy_layers(x, y, articulators)
  img = head * value
  for mask, value, _ in rest:
    img = _paint(img, mask, value)
  return img


def _label_anatomy(x, y, articulators) -> np.ndarray:
  """One frame's label map (LABELS): the last shape painted at half strength or more; tissue
  around the pharyngeal airway is its wall."""
  labels = np.zeros(x.shape, np.uint8)
  for k, (mask, _, label) in enumerate(_anatomy_layers(x, y, articulators)):
    labels[mask >= 0.5] = label
    if k == 3:  # after the pharynx: the tissue ring around its airway
      ring = _capsule(x, y, 84, 50, 86, 124, 5 + PHARYNX_WALL_PX)
      labels[(ring >= 0.5) & (mask < 0.5) & (labels == 7)] = 5
  return labels


# ---------------------------------------------------------------- writing
def _uid(*parts) -> str:
  return generate_uid(entropy_srcs=["cmri2spec_tf phantom", *map(str, parts)])


def write_dicom_series(folder: str, subject: Subject, frames: np.ndarray, seed: int) -> None:
  """26 single-frame MR Image Storage files with TriggerTime and InstanceNumber."""
  os.makedirs(folder, exist_ok=True)
  study, series = _uid(seed, subject.subject_id, "study"), _uid(seed, subject.subject_id, "series")
  frame_of_reference = _uid(seed, subject.subject_id, "frame of reference")
  for k, (pixels, when) in enumerate(zip(frames, frame_times(subject))):
    sop = _uid(seed, subject.subject_id, "image", k)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PatientName, ds.PatientID = f"Phantom^{subject.subject_id}", subject.subject_id
    ds.StudyDate = ds.SeriesDate = "20220101"
    ds.StudyTime = "090000"
    ds.AcquisitionTime = "0900%02d.%06d" % divmod(int(round(when * 1e6)), 1_000_000)
    ds.Modality, ds.Manufacturer = "MR", "cmri2spec_tf phantom"
    ds.SeriesDescription = f"cine {subject.word}"
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, k + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "GR", "SP", "2D"
    ds.MagneticFieldStrength, ds.RepetitionTime, ds.EchoTime, ds.FlipAngle = 3, 4.6, 1.5, 10
    ds.TriggerTime = round(when * 1000, 3)
    ds.CardiacNumberOfImages = ds.NumberOfTemporalPositions = N_FRAMES
    ds.TemporalPositionIdentifier = k + 1
    ds.SliceThickness = 6
    ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
    ds.ImagePositionPatient = [0, -MATRIX * PIXEL_MM / 2, MATRIX * PIXEL_MM / 2]
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(os.path.join(folder, f"IM{k + 1:04d}.dcm"), enforce_file_format=True)


def generate_subject(out_dir: str, index: int, subject_id: str, word: str, seed: int) -> Subject:
  """Writes one subject's DICOM series, WAV and articulator masks; returns its parameters."""
  rng = np.random.default_rng([seed, index])
  subject = make_subject(subject_id, word, rng)
  frames = render_frames(subject, rng)
  audio = synthesize_audio(subject, rng)
  folder = os.path.join(out_dir, "subjects", subject_id)
  write_dicom_series(os.path.join(folder, "mri"), subject, frames, seed)
  soundfile.write(os.path.join(folder, "audio.wav"), audio, SAMPLE_RATE, subtype="PCM_16")
  labels = render_labels(subject, segment_tracks(subject, frame_times(subject))["articulators"])
  write_masks(os.path.join(folder, MASKS), labels)
  return subject


MASKS = "masks.npz"  # beside a cine subject's mri/ folder; <stem>_masks.npz beside a video


def write_masks(path: str, labels: np.ndarray, fps: float | None = None) -> None:
  """masks.npz: `labels` uint8 [frames, 128, 128] on the images' pixel grid (the package's
  geometry leaves the phantom's square 128 x 128 frames as they are), `legend` ("0=air and
  background;1=tongue;..."), and `fps` for a real-time take (frame i at i / fps)."""
  import io

  from cmri2spec_tf.base import atomic

  legend = ";".join(f"{k}={v}" for k, v in LABELS.items())
  buffer = io.BytesIO()
  extra = {} if fps is None else {"fps": np.float64(fps)}
  np.savez_compressed(buffer, labels=labels.astype(np.uint8), legend=np.array(legend), **extra)
  atomic.write_bytes(path, buffer.getvalue())


def factor_row(subject: Subject, with_timing: bool = True) -> dict:
  """A subject's row of subjects.csv (data/factors.py); timing left out for the rtMRI take,
  whose three words each have their own."""
  row = {"subject_id": subject.subject_id, "word": subject.word, "f0_hz": subject.f0_hz,
         "vocal_tract_cm": subject.vocal_tract_cm, "anatomy_scale": subject.anatomy_scale,
         "anatomy_shift_x_px": subject.anatomy_shift_px[0],
         "anatomy_shift_y_px": subject.anatomy_shift_px[1], "noise_dbfs": subject.noise_dbfs}
  if with_timing:
    duration = subject.n_samples / SAMPLE_RATE
    row |= {"duration_s": duration,
            "vowel_s": duration * subject.durations[stressed_vowel_index(subject.word)],
            "segment_fractions": ";".join(f"{d:.4f}" for d in subject.durations)}
  return row


def subject_plan(n_ageese: int, n_asouk: int) -> list[tuple[str, str]]:
  """(subject_id, word) for every subject: the ageese speakers first."""
  total = n_ageese + n_asouk
  width = max(2, len(str(total)))
  words = ["ageese"] * n_ageese + ["asouk"] * n_asouk
  return [(f"S{i + 1:0{width}d}", w) for i, w in enumerate(words)]


def generate(out_dir: str, n_ageese: int = 43, n_asouk: int = 20, seed: int = 0,
             workers: int = 1) -> list[Subject]:
  """Writes the whole phantom dataset (series, audio, manifest.csv) into out_dir."""
  plan = subject_plan(n_ageese, n_asouk)
  if not plan:
    raise ValueError("the phantom needs at least one subject")
  os.makedirs(out_dir, exist_ok=True)
  subjects = run_subjects(generate_subject, out_dir, plan, seed, workers)
  _write_manifest(out_dir, subjects)
  factors.write_factors(out_dir, [factor_row(s) for s in subjects])
  return subjects


def run_subjects(write_subject, out_dir: str, plan, seed: int, workers: int) -> list:
  """write_subject(out_dir, index, subject_id, word, seed) for every subject of the plan, in
  `workers` processes; the results in plan order."""
  jobs = [(out_dir, i, sid, word, seed) for i, (sid, word) in enumerate(plan)]
  if workers > 1:
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
      return pool.starmap(write_subject, jobs)
  return [write_subject(*job) for job in jobs]


def _write_manifest(out_dir: str, subjects: list[Subject]) -> None:
  tmp = os.path.join(out_dir, ".manifest.csv.tmp")
  with open(tmp, "w", newline="") as f:
    f.write("subject_id,word,mri,audio\n")
    for s in subjects:
      f.write(f"{s.subject_id},{s.word},subjects/{s.subject_id}/mri,subjects/{s.subject_id}/audio.wav\n")
  os.replace(tmp, os.path.join(out_dir, "manifest.csv"))

