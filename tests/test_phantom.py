"""The speech-MRI phantom: real DICOM and WAV, deterministic, varied, and physically coupled."""

import filecmp
import glob
import os

import librosa
import numpy as np
import pydicom
import scipy.signal
import soundfile

from cmri2spec_tf.data import dataset as dataset_lib
from cmri2spec_tf.synthetic import phantom


def test_files_are_real_dicom_and_wav(phantom_dir):
  manifest = open(os.path.join(phantom_dir, "manifest.csv")).read().splitlines()
  assert manifest[0] == "subject_id,word,mri,audio" and len(manifest) == 6
  files = sorted(glob.glob(f"{phantom_dir}/subjects/S01/mri/*"))
  assert len(files) == 26
  series = set()
  for k, path in enumerate(files):
    ds = pydicom.dcmread(path)  # plain read, no force
    assert ds.Modality == "MR" and ds.SOPClassUID == pydicom.uid.MRImageStorage
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert [float(v) for v in ds.PixelSpacing] == [1.87, 1.87]
    assert ds.InstanceNumber == k + 1 and ds.pixel_array.shape == (128, 128)
    assert ds.SOPInstanceUID.is_valid and ds.SOPInstanceUID != ds.SeriesInstanceUID
    series.add(ds.SeriesInstanceUID)
  times = [float(pydicom.dcmread(p).TriggerTime) for p in files]
  assert len(series) == 1 and np.all(np.diff(times) > 0)
  for wav in glob.glob(f"{phantom_dir}/subjects/*/audio.wav"):
    info = soundfile.info(wav)
    assert info.samplerate == 22050 and info.channels == 1
    assert 21832 <= info.frames <= 24175


def test_passes_check_data(phantom_dir, capsys):
  assert dataset_lib.report(phantom_dir) == 0
  out = capsys.readouterr().out
  assert "5 usable recording(s), words: ageese, asouk; 0 problem(s)" in out
  assert "S05" in out and "1.87x1.87" in out


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
  a, b, c = (str(tmp_path / n) for n in "abc")
  phantom.generate(a, 1, 1, seed=7)
  phantom.generate(b, 1, 1, seed=7, workers=2)
  phantom.generate(c, 1, 1, seed=8)
  names = [os.path.relpath(p, a) for p in glob.glob(f"{a}/**/*", recursive=True) if os.path.isfile(p)]
  assert len(names) == 2 * 28 + 2 and "subjects.csv" in names  # series, wav, masks; manifest, factors
  match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
  assert not mismatch and not errors
  assert not filecmp.cmp(f"{a}/subjects/S01/audio.wav",
                         f"{c}/subjects/S01/audio.wav", shallow=False)


def test_subjects_differ():
  rng = np.random.default_rng(0)
  subjects = [phantom.make_subject(f"S{i}", "ageese", np.random.default_rng([0, i])) for i in range(20)]
  for field in ("f0_hz", "vocal_tract_cm", "anatomy_scale", "n_samples", "noise_dbfs"):
    values = [getattr(s, field) for s in subjects]
    assert len(set(values)) == 20 and np.std(values) > 0, field
  assert len({s.durations for s in subjects}) == 20
  assert max(s.f0_hz for s in subjects) - min(s.f0_hz for s in subjects) > 60
  # F0 measured from the audio follows the subject's F0.
  for s in subjects[:3]:
    wave = phantom.synthesize_audio(s, rng)
    f0 = librosa.yin(wave, fmin=60, fmax=400, sr=22050, frame_length=2048)
    voiced_f0 = np.median(f0[(f0 > 60) & (f0 < 400)])
    assert abs(voiced_f0 / s.f0_hz - 1) < 0.12, (voiced_f0, s.f0_hz)
  # Anatomy differs in the images too.
  frames = [phantom.render_frames(s, np.random.default_rng(1)) for s in subjects[:2]]
  assert np.mean(np.abs(frames[0].astype(float) - frames[1].astype(float))) > 50


def _tongue_column(frame):
  """Centre column of the tongue: pixels in the tongue's intensity band inside the mouth."""
  top = np.percentile(frame, 99.5)  # ~ mandible marrow (0.95 of the scale)
  band = (frame > 0.62 / 0.95 * top) & (frame < 0.85 / 0.95 * top)
  band[:40], band[100:], band[:, :10], band[:, 95:] = False, False, False, False
  return np.nonzero(band)[1].mean()


def _second_formant(wave, rate, t):
  """F2 by LPC (order 12 at 10 kHz) on 30 ms around time t."""
  centre = int(t * rate)
  seg = wave[max(0, centre - 150):centre + 150]
  seg = scipy.signal.lfilter([1, -0.95], [1], seg) * np.hamming(seg.size)
  roots = np.roots(librosa.lpc(seg.astype(np.float64), order=12))
  roots = roots[np.imag(roots) > 0]
  freqs = np.angle(roots) * rate / (2 * np.pi)
  bandwidths = -np.log(np.abs(roots)) * rate / np.pi
  freqs = np.sort(freqs[(freqs > 250) & (bandwidths < 500)])
  return freqs[1] if freqs.size > 1 else np.nan


def test_audio_formants_follow_the_tongue_in_the_images(phantom_dir):
  """The F2 trajectory recovered from the audio tracks the tongue drawn in the DICOM frames."""
  per_subject, pooled_x, pooled_f2 = [], [], []
  for folder in sorted(glob.glob(f"{phantom_dir}/subjects/*")):
    frames = sorted((pydicom.dcmread(p) for p in glob.glob(f"{folder}/mri/*")),
                    key=lambda ds: float(ds.TriggerTime))
    times = np.array([float(ds.TriggerTime) / 1000 for ds in frames])
    tongue = np.array([_tongue_column(ds.pixel_array.astype(float)) for ds in frames])
    wave, rate = soundfile.read(f"{folder}/audio.wav")
    wave = librosa.resample(wave, orig_sr=rate, target_sr=10000)
    f2 = np.array([_second_formant(wave, 10000, t) for t in times])
    loudness = np.array([np.sqrt(np.mean(wave[int(t * 1e4) - 100:int(t * 1e4) + 100] ** 2)) for t in times])
    voiced = np.isfinite(f2) & (loudness > 0.3 * loudness.max())
    assert voiced.sum() >= 8
    per_subject.append(np.corrcoef(tongue[voiced], f2[voiced])[0, 1])
    standardize = lambda v: (v - v.mean()) / v.std()  # anatomy size differs per subject
    pooled_x += list(standardize(tongue[voiced]))
    pooled_f2 += list(standardize(f2[voiced]))
  # Tongue further back (larger column) -> lower F2: strongly negative correlation.
  assert np.median(per_subject) < -0.8, per_subject
  assert np.corrcoef(pooled_x, pooled_f2)[0, 1] < -0.6
