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
  an .npz and an HDF5 dataset, each with a phantom recording's audio; extra columns kept."""
  root = tmp_path / "data"
  root.mkdir()
  frames = _frames()
  _write_video(root / "s2.mp4", frames, "libx264", "yuv420p")
  (root / "s3").mkdir()
  for k, grey in enumerate(frames):
    Image.fromarray(grey).save(root / "s3" / f"f{k}.png")
  np.savez(root / "s4.npz", frames=frames, fps=FPS)
  with h5py.File(root / "recon.h5", "w") as f:
    f.create_dataset("s5/frames", data=frames)
  shutil.copytree(f"{phantom_dir}/subjects/S01/mri", root / "s1")
  for k, sid in enumerate(("S01", "S02", "S03", "S04", "S05"), start=1):
    shutil.copy(f"{phantom_dir}/subjects/{sid}/audio.wav", root / f"s{k}.wav")
  (root / "manifest.csv").write_text(
      "subject_id,word,mri,audio,frame_rate,site\n"
      "S1,ageese,s1,s1.wav,,A\nS2,ageese,s2.mp4,s2.wav,,A\nS3,ageese,s3,s3.wav,83,B\n"
      "S4,asouk,s4.npz,s4.wav,,B\nS5,asouk,recon.h5:/s5/frames,s5.wav,50,B\n")
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
