"""MRI sources beyond DICOM (video, image frames, arrays, HDF5): each reads as the same frames
given directly; bad files are named with their problem; a dataset may mix sources."""

import os
import shutil
from fractions import Fraction

import h5py
import numpy as np
import pytest
from PIL import Image

from cmri2spec_tf.data import dataset, sources
from cmri2spec_tf.data.problems import DataError
from tests import launcher

T, SIDE, FPS = 30, 84, 83


def _frames(t=T, side=SIDE):
  """uint8 [t, side, side]: a ramp background and a square moving left to right."""
  frames = np.tile(np.linspace(20, 120, side, dtype=np.float64), (t, side, 1))
  for k in range(t):
    left = 5 + k * (side - 30) // t
    frames[k, 30:50, left:left + 20] = 230
  return np.round(frames).astype(np.uint8)


@pytest.fixture(scope="module")
def reference():
  return sources.to_cine(sources.Frames(_frames().astype(np.float64), "array", None), "ref").frames


def _write_video(path, frames, codec, pix_fmt, rate=FPS):
  import av

  with av.open(str(path), "w") as container:
    stream = container.add_stream(codec, rate=Fraction(rate))
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
    for grey in frames:
      frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return str(path)


@pytest.mark.parametrize("name, codec, pix_fmt, tolerance", [
    ("clip.mp4", "libx264", "yuv420p", 0.04),
    ("clip.avi", "mjpeg", "yuvj420p", 0.04),
    ("clip.mkv", "ffv1", "gray", 1e-6),
    ("clip.mov", "png", "rgb24", 1e-6),
])
def test_video_containers_and_codecs(tmp_path, reference, name, codec, pix_fmt, tolerance):
  cine = sources.read_mri(_write_video(tmp_path / name, _frames(), codec, pix_fmt))
  assert cine.info.kind == "video" and cine.info.frames == T
  assert cine.info.frame_rate == pytest.approx(FPS)
  assert np.abs(cine.frames - reference).mean() < tolerance, np.abs(cine.frames - reference).mean()


def test_image_frames_8_and_16_bit_in_natural_order(tmp_path, reference):
  frames = _frames()
  png8, png16, tiff16 = (tmp_path / n for n in ("png8", "png16", "tiff16"))
  for folder in (png8, png16, tiff16):
    folder.mkdir()
  for k in np.random.default_rng(0).permutation(T):  # written out of order, names unpadded
    Image.fromarray(frames[k]).save(png8 / f"frame{k}.png")
    wide = frames[k].astype(np.uint16) * 257
    Image.fromarray(wide).save(png16 / f"frame{k}.png")
    Image.fromarray(wide).save(tiff16 / f"slice_{k}.tif")
  for folder in (png8, png16, tiff16):
    cine = sources.read_mri(str(folder), frame_rate=FPS)
    assert cine.info.kind == "frames" and cine.info.files == T
    assert cine.info.frame_rate == FPS
    np.testing.assert_allclose(cine.frames, reference, atol=1e-5)


def test_colour_jpeg_frames_become_luminance(tmp_path, reference):
  folder = tmp_path / "jpeg"
  folder.mkdir()
  for k, grey in enumerate(_frames()):
    Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(folder / f"{k:03d}.jpg",
                                                               quality=95)
  cine = sources.read_mri(str(folder))
  assert cine.info.frame_rate is None and np.abs(cine.frames - reference).mean() < 0.02


def test_arrays_npy_npz_and_hdf5(tmp_path, reference):
  frames = _frames()
  np.save(tmp_path / "a.npy", frames)
  np.savez(tmp_path / "b.npz", frames=frames.astype(np.float32), fps=np.float64(FPS),
           notes=np.array([1, 2]))
  np.savez(tmp_path / "c.npz", frames[..., None])  # [T, H, W, 1], the only array
  with h5py.File(tmp_path / "recon.h5", "w") as f:
    f.create_dataset("sub001/frames", data=frames)
    f["sub001/frames"].attrs["frame_rate"] = FPS
    f.create_dataset("sub001/notes", data=np.arange(3))
  for entry, rate in ((tmp_path / "a.npy", None), (tmp_path / "b.npz", FPS),
                      (tmp_path / "c.npz", None), (f"{tmp_path}/recon.h5:/sub001/frames", FPS),
                      (tmp_path / "recon.h5", FPS)):  # the file's only 3-D dataset
    cine = sources.read_mri(entry)
    assert cine.info.frame_rate == rate, entry
    np.testing.assert_allclose(cine.frames, reference, atol=1e-5, err_msg=str(entry))
  assert sources.read_mri(tmp_path / "a.npy", frame_rate=20).info.frame_rate == 20


def _bad_inputs(tmp_path):
  """(entry, frame_rate, the file the error names, phrase) for each kind of bad input."""
  import av

  video = _write_video(tmp_path / "good.mp4", _frames(), "libx264", "yuv420p")
  truncated = tmp_path / "truncated.mp4"
  whole = open(video, "rb").read()
  truncated.write_bytes(whole[:len(whole) // 2])
  empty = tmp_path / "empty.mkv"
  empty.write_bytes(b"")
  sound_only = str(tmp_path / "sound_only.mp4")
  with av.open(sound_only, "w") as container:
    stream = container.add_stream("aac", rate=22050)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                       layout="mono")
    frame.sample_rate = 22050
    for packet in list(stream.encode(frame)) + list(stream.encode()):
      container.mux(packet)
  mixed = tmp_path / "mixed"
  mixed.mkdir()
  Image.fromarray(_frames()[0]).save(mixed / "1.png")
  Image.fromarray(_frames(side=64)[1]).save(mixed / "2.png")
  np.save(tmp_path / "rank2.npy", np.zeros((84, 84)))
  np.savez(tmp_path / "fast.npz", frames=_frames(), fps=5000.0)
  np.savez(tmp_path / "two.npz", a=_frames(), b=_frames())
  with h5py.File(tmp_path / "r.h5", "w") as f:
    f.create_dataset("frames", data=_frames())
  return [
      (str(truncated), None, str(truncated), "unreadable video"),
      (str(empty), None, str(empty), "unreadable video"),
      (sound_only, None, sound_only, "no video stream"),
      (str(mixed), FPS, str(mixed / "2.png"), "differs from the first frame's"),
      (str(tmp_path / "rank2.npy"), None, str(tmp_path / "rank2.npy"), "expected [frames, rows"),
      (str(tmp_path / "fast.npz"), None, str(tmp_path / "fast.npz"), "not plausible"),
      (str(tmp_path / "a.npy"), 0.0, str(tmp_path / "a.npy"), "not plausible"),
      (str(tmp_path / "two.npz"), None, str(tmp_path / "two.npz"), "name the frames"),
      (f"{tmp_path}/r.h5:/recon/none", None, f"{tmp_path}/r.h5:/recon/none", "no dataset"),
      (str(tmp_path / "missing.avi"), None, str(tmp_path / "missing.avi"), "MRI series not found"),
  ]


def test_bad_inputs_name_the_file_and_the_problem(tmp_path):
  np.save(tmp_path / "a.npy", _frames())
  for entry, rate, named, phrase in _bad_inputs(tmp_path):
    with pytest.raises(DataError) as raised:
      sources.read_mri(entry, frame_rate=rate)
    assert raised.value.problem.path == named, (entry, raised.value.problem)
    assert phrase in raised.value.problem.message, (entry, raised.value.problem.message)


def test_a_dataset_mixes_sources_and_check_data_reports_them(tmp_path, phantom_dir, capsys):
  """One manifest: a DICOM series, a video, a frames folder (frame_rate from the manifest),
  an .npz and an HDF5 dataset, each with a phantom recording's audio (about 1.07 s: the 30
  frames at 28 fps span it, so the sync check passes); extra columns kept."""
  root = tmp_path / "data"
  root.mkdir()
  frames = _frames()
  _write_video(root / "s2.mp4", frames, "libx264", "yuv420p", rate=28)
  (root / "s3").mkdir()
  for k, grey in enumerate(frames):
    Image.fromarray(grey).save(root / "s3" / f"f{k}.png")
  np.savez(root / "s4.npz", frames=frames, fps=28)
  with h5py.File(root / "recon.h5", "w") as f:
    f.create_dataset("s5/frames", data=frames)
  shutil.copytree(f"{phantom_dir}/subjects/S01/mri", root / "s1")
  for k, sid in enumerate(("S01", "S02", "S03", "S04", "S05"), start=1):
    shutil.copy(f"{phantom_dir}/subjects/{sid}/audio.wav", root / f"s{k}.wav")
  (root / "manifest.csv").write_text(
      "subject_id,word,mri,audio,frame_rate,site\n"
      "S1,ageese,s1,s1.wav,,A\nS2,ageese,s2.mp4,s2.wav,,A\nS3,ageese,s3,s3.wav,28,B\n"
      "S4,asouk,s4.npz,s4.wav,,B\nS5,asouk,recon.h5:/s5/frames,s5.wav,28,B\n")
  assert dataset.report(str(root)) == 0
  table = capsys.readouterr().out
  for sid, kind in (("S1", "dicom"), ("S2", "video"), ("S3", "frames"), ("S4", "array"),
                    ("S5", "hdf5")):
    assert any(line.split()[:3] == [sid, line.split()[1], kind] for line in table.splitlines()), \
        (sid, table)
  data = dataset.load_dataset(str(root), cache_dir=str(tmp_path / "cache"), verbose=False)
  assert data.mri.shape == (5, 26, 128, 128) and len(set(data.subject_ids)) == 5
  np.testing.assert_allclose(data.mri[3].astype(np.float32), data.mri[4].astype(np.float32),
                             atol=2e-3)  # the same frames as .npz and as HDF5
  (root / "manifest.csv").write_text("subject_id,word,mri,audio,frame_rate\n"
                                     "S1,ageese,s1,s1.wav,fast\nS4,asouk,s4.npz,s4.wav,0\n")
  assert dataset.report(str(root)) == 1
  problems = capsys.readouterr().err
  assert "frame_rate 'fast' is not a number" in problems and "frame_rate 0 is not > 0" in problems


def _write_video_with_sound(path, frames, sound, rate=22050, with_audio=True):
  """An mp4 of grey frames (H.264) and, optionally, a mono AAC track of `sound`."""
  import av

  with av.open(str(path), "w") as container:
    video = container.add_stream("libx264", rate=Fraction(FPS))
    video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    audio = container.add_stream("aac", rate=rate, layout="mono") if with_audio else None
    for grey in frames:
      frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
      for packet in video.encode(frame):
        container.mux(packet)
    if audio is not None:
      chunk = 1024
      for start in range(0, len(sound), chunk):
        frame = av.AudioFrame.from_ndarray(sound[None, start:start + chunk].astype(np.float32),
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in audio.encode(frame):
          container.mux(packet)
      for packet in audio.encode():
        container.mux(packet)
    for packet in video.encode():
      container.mux(packet)
  return str(path)


def test_audio_track_inside_a_video(tmp_path):
  """The speech of an rtMRI video comes from its own audio track (AAC here), at 22,050 Hz."""
  from cmri2spec_tf.data import audio

  t = np.arange(int(1.5 * 16000)) / 16000
  sound = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
  video = _write_video_with_sound(tmp_path / "take.mp4", _frames(), sound, rate=16000)
  track = audio.read_audio(video)
  assert track.info.sample_rate == 16000 and track.info.subtype == "AAC"
  assert track.info.channels == 1
  expected = audio.read_audio(_wav(tmp_path / "take.wav", sound, 16000)).waveform
  n = min(len(expected), len(track.waveform))
  lag = int(np.argmax(np.correlate(track.waveform[:4000], expected[:2000], "valid")))
  aligned = track.waveform[lag:lag + n - 4000]
  assert np.corrcoef(aligned, expected[:len(aligned)])[0, 1] > 0.95  # AAC: lossy and delayed
  silent = _write_video_with_sound(tmp_path / "mute.mp4", _frames(), sound, with_audio=False)
  with pytest.raises(DataError, match="no audio track"):
    audio.read_audio(silent)


def _wav(path, sound, rate):
  import soundfile

  soundfile.write(str(path), sound, rate)
  return str(path)


def _square_column(frame):
  """Column of the bright square's centre in a model frame (float [128, 128])."""
  profile = frame[55:70].mean(axis=0)  # rows across the square (30-50 of 84 -> ~46-76 of 128)
  return float(np.argmax(profile > 0.9 * profile.max()) + np.sum(profile > 0.9 * profile.max()) / 2)


def test_a_segment_reads_the_same_frames_from_every_source(tmp_path):
  """start_s-end_s of a recording: 26 frames from start to end (the square's position tracks
  time), the same from an .npy, an HDF5 dataset, image frames and a lossless video."""
  frames = _frames(t=240)  # 2.9 s at 83 fps; the square moves across in that time
  np.save(tmp_path / "long.npy", frames)
  with h5py.File(tmp_path / "long.h5", "w") as f:
    f.create_dataset("frames", data=frames)
  (tmp_path / "png").mkdir()
  for k, grey in enumerate(frames):
    Image.fromarray(grey).save(tmp_path / "png" / f"{k}.png")
  video = _write_video(tmp_path / "long.mkv", frames, "ffv1", "gray")
  segment = (1.0, 1.6)
  read = [sources.read_mri(entry, frame_rate=FPS, segment=segment)
          for entry in (tmp_path / "long.npy", f"{tmp_path}/long.h5:/frames", tmp_path / "png",
                        video)]
  for cine in read[1:3]:
    np.testing.assert_allclose(cine.frames, read[0].frames, atol=1e-5)
  # the video's frames lie at its own timestamps (Matroska: whole milliseconds)
  assert np.abs(read[3].frames - read[0].frames).max() < 0.02
  assert read[0].info.frames == 240  # the recording's length, though only the segment was read
  whole = sources.read_mri(tmp_path / "long.npy", frame_rate=FPS)
  first, last = _square_column(read[0].frames[0]), _square_column(read[0].frames[-1])
  # the square's left edge at frame i is 5 + i * 54 // 240 pixels of 84 (x 128/84 on the grid)
  expected = [(5 + i * 54 / 240 + 10) * 128 / 84 for i in (segment[0] * FPS, segment[1] * FPS)]
  assert abs(first - expected[0]) < 3 and abs(last - expected[1]) < 3, (first, last, expected)
  assert abs(_square_column(whole.frames[0]) - _square_column(read[0].frames[0])) > 20


def test_segments_outside_the_recording_or_of_dicom_are_named(tmp_path, phantom_dir):
  np.save(tmp_path / "a.npy", _frames())  # 30 frames: 0.36 s at 83 fps
  video = _write_video(tmp_path / "v.mp4", _frames(), "libx264", "yuv420p")
  for entry in (str(tmp_path / "a.npy"), video):
    with pytest.raises(DataError, match="outside") as raised:
      sources.read_mri(entry, frame_rate=FPS, segment=(2.0, 2.5))
    assert raised.value.problem.path == entry
  with pytest.raises(DataError, match="needs the frame rate"):
    sources.read_mri(tmp_path / "a.npy", segment=(0.1, 0.2))
  with pytest.raises(DataError, match="takes no segment"):
    sources.read_mri(f"{phantom_dir}/subjects/S01/mri", segment=(0.1, 0.5))


def test_the_window_rule_for_segments():
  """A segment shorter than a window gets the window around its centre from the recording's
  audio (shifted inwards at its ends); a longer one is slid over itself."""
  from cmri2spec_tf.data.spectrogram import SpecParams, segment_span, window_starts

  params = SpecParams()  # 21,000-sample windows
  assert segment_span(100_000, 40_000, 50_000, params) == (34_500, 55_500)
  assert segment_span(100_000, 1_000, 5_000, params) == (0, 21_000)
  assert segment_span(100_000, 95_000, 99_000, params) == (79_000, 100_000)
  assert segment_span(100_000, 10_000, 60_000, params) == (10_000, 60_000)
  starts = window_starts(100_000, params, (10_000, 60_000))
  assert starts[0] == 10_000 and starts[-1] == 60_000 - 21_000 and len(starts) == 100
  with pytest.raises(ValueError):
    segment_span(20_000, 1_000, 5_000, params)


def test_a_dataset_of_segments_of_one_long_video_with_its_own_sound(tmp_path):
  """Several words of each subject's one recording (audio = the video's own track): many rows
  per subject, each segment its own cache entry and targets, ids naming the segments."""
  root = tmp_path / "data"
  root.mkdir()
  t = np.arange(3 * 22050) / 22050
  for k, sid in enumerate(("A", "B")):
    pitch = 150 + 60 * k
    sound = 0.3 * np.sin(2 * np.pi * pitch * t * (1 + 0.3 * t))  # a rising tone
    _write_video_with_sound(root / f"{sid}.mp4", _frames(t=240), sound)
  rows = "".join(f"{sid},{word},{sid}.mp4,{sid}.mp4,{start},{end},0.05\n"
                 for sid in ("A", "B")
                 for word, start, end in (("ageese", 0.3, 0.8), ("asouk", 1.2, 1.6),
                                          ("ageese", 2.0, 2.5)))
  (root / "manifest.csv").write_text("subject_id,word,mri,audio,start_s,end_s,audio_offset_s\n"
                                     + rows)
  assert dataset.report(str(root)) == 0
  data = dataset.load_dataset(str(root), cache_dir=str(tmp_path / "cache"), verbose=False)
  assert data.subject_ids == ["A"] * 3 + ["B"] * 3
  assert data.recording_ids[1] == "A:A.mp4@1.200-1.600"
  assert len(os.listdir(tmp_path / "cache")) == 6  # one cache entry per segment
  spectra = data.spectrograms.astype(np.float32)
  assert np.abs(spectra[0] - spectra[2]).mean() > 0.01  # other segments, other sound
  mri = data.mri.astype(np.float32)
  assert np.abs(mri[0] - mri[1]).mean() > 0.005  # and other frames
  train, heldout = data.fold("2", 0)
  assert set(train.subject_ids).isdisjoint(heldout.subject_ids)
  (root / "manifest.csv").write_text("subject_id,word,mri,audio,start_s,end_s\n"
                                     "A,ageese,A.mp4,A.mp4,2.5,2.0\n"
                                     "B,ageese,B.mp4,B.mp4,1.0,\n"
                                     "B,asouk,B.mp4,B.mp4,2.0,9.0\n")
  assert dataset.report(str(root)) == 1


READ_LATE_SEGMENT = """
import sys
from cmri2spec_tf.data import sources

def peak_mb():
  return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024

sources.read_mri(sys.argv[1], segment=(1.0, 2.0))  # warm-up: libraries, TensorFlow's resize
before = peak_mb()
cine = sources.read_mri(sys.argv[1], segment=(590.0, 591.0))
print(cine.info.frames, cine.frames.shape[0], round(peak_mb() - before, 1))
"""


def test_a_long_video_is_read_as_a_stream(tmp_path):
  """A 10-minute rtMRI-like video (83 fps, ~50,000 frames; 1.4 GB as float32 frames): reading
  a segment near its end decodes from a seek just before it, so peak memory grows by far less
  than the file would take decoded."""
  import sys

  import av

  path = str(tmp_path / "ten_minutes.mp4")
  base = np.tile(np.linspace(20, 120, SIDE), (SIDE, 1))
  with av.open(path, "w") as container:
    stream = container.add_stream("libx264", rate=Fraction(FPS))
    stream.width = stream.height = SIDE
    stream.pix_fmt, stream.options = "yuv420p", {"preset": "ultrafast", "g": str(2 * FPS)}
    for i in range(FPS * 600):
      image = base.copy()
      image[30:50, 5 + (i % 200) * 54 // 200:][:, :20] = 230
      frame = av.VideoFrame.from_ndarray(np.repeat(image.astype(np.uint8)[..., None], 3, 2),
                                         format="rgb24")
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  result = launcher.run([sys.executable, "-c", READ_LATE_SEGMENT, path], capture_output=True,
                        text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  total, frames, grown_mb = result.stdout.split()
  assert int(total) == FPS * 600 and int(frames) == 26
  print(f"10-minute video, segment at 590 s: peak memory grew {grown_mb} MB")
  assert float(grown_mb) < 150, grown_mb


def test_continuous_synthesis_overlap_adds_clips_on_the_mel_timeline(tmp_path):
  """predict_recording: clips of one window every hop_s, the last one at the end; each clip's
  window lands at its start's mel frame and overlaps are averaged (checked with a translator
  whose window is the clip's index)."""
  from cmri2spec_tf.data.spectrogram import SpecParams
  from cmri2spec_tf.serving.inference import Translator

  params = SpecParams()
  np.save(tmp_path / "long.npy", _frames(t=250))  # 3.01 s at 83 fps
  calls = []

  def translate(batch):
    calls.append(len(batch))
    start = sum(calls) - len(batch)
    return np.stack([np.full((64, 64), float(start + i)) for i in range(len(batch))])

  model = Translator(translate, params, "stub")
  spectrogram = model.predict_recording(str(tmp_path / "long.npy"), hop_s=0.5, frame_rate=FPS)
  duration, clip = 249 / FPS, params.window_samples / params.sample_rate  # to the last frame
  starts = list(np.arange(0, duration - clip + 1e-9, 0.5)) + [duration - clip]
  assert sum(calls) == len(starts) == 6
  frames_per_s = params.sample_rate / params.hop_length
  total = int(round(duration * frames_per_s)) + 1
  expected_sum, count = np.zeros(total), np.zeros(total)
  for i, start in enumerate(starts):
    first = int(round(start * frames_per_s))
    expected_sum[first:first + 64] += i
    count[first:first + 64] += 1
  assert spectrogram.shape == (64, int((count > 0).sum()))
  np.testing.assert_allclose(spectrogram[0], (expected_sum / count)[count > 0], atol=1e-6)


def test_predict_a_long_recording_writes_its_whole_length(smoke_run, tmp_path):
  import sys

  import soundfile

  from tests.conftest import REPO

  run, _ = smoke_run
  np.save(tmp_path / "long.npy", _frames(t=250))
  t = np.arange(int(3.0 * 22050)) / 22050
  soundfile.write(str(tmp_path / "long.wav"), 0.2 * np.sin(2 * np.pi * 200 * t), 22050)
  result = launcher.run([sys.executable, "-m", "cmri2spec_tf.predict", f"--model={run}",
                         f"--mri={tmp_path}/long.npy", f"--out={tmp_path}/out/long",
                         "--frame_rate=83", f"--audio={tmp_path}/long.wav"], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  spectrogram = np.load(tmp_path / "out" / "long.npy")
  assert spectrogram.shape[0] == 64 and 195 <= spectrogram.shape[1] <= 205  # 3.0 s of frames
  sound, rate = soundfile.read(str(tmp_path / "out" / "long.wav"))
  assert rate == 22050 and abs(len(sound) - (spectrogram.shape[1] - 1) * 330) == 0
  l1 = float(result.stdout.split("L1 against")[1].split(":")[1])
  assert 0 < l1 < 0.6
  missing = launcher.run([sys.executable, "-m", "cmri2spec_tf.predict", f"--model={run}",
                          f"--mri={tmp_path}/long.npy", f"--out={tmp_path}/out2/long"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
  assert missing.returncode == 1 and "needs the frame rate" in missing.stderr
  assert not (tmp_path / "out2").exists()
