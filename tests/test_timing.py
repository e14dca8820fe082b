"""Real recordings read in sync: one clock per recording. Every fixture encodes time: a bright
block whose column moves with time in the frames, and a chirp whose phase fixes every sample's
time in the sound, so a reading is checked in milliseconds, not only by its exit code."""

import csv
import os
import sys
import unicodedata
from fractions import Fraction

import h5py
import numpy as np
import pytest
import soundfile
from PIL import Image

from cmri2spec_tf.data import alignments, dataset, sources
from cmri2spec_tf.data.audio import SAMPLE_RATE
from cmri2spec_tf.data.problems import DataError
from tests.conftest import REPO
from tests import launcher

SIDE = 128  # frames are SIDE x SIDE, the model's grid: no resizing blurs the marker
SPEED = 20.0  # columns per second the block moves (for recordings up to 5.5 s)
BLOCK = 8


def block_column(t: float) -> float:
  """The block's left column (in frame pixels) at time t."""
  return 4.0 + SPEED * t


def marker_frame(t: float) -> np.ndarray:
  """uint8 [SIDE, SIDE]: dark background, a block at block_column(t), anti-aliased (so the
  column holds sub-pixel time)."""
  frame = np.full((SIDE, SIDE), 20.0)
  left = block_column(t)
  columns = np.arange(SIDE)
  cover = np.clip(np.minimum(columns + 1, left + BLOCK) - np.maximum(columns, left), 0, 1)
  frame[48:80, :] += 200.0 * cover[None, :]
  return np.round(frame).astype(np.uint8)


def times_of(model_frames: np.ndarray) -> np.ndarray:
  """The time each model frame [26, 128, 128] shows: the block's centroid -> block_column."""
  rows = model_frames[:, 48:80, :]
  weights = np.clip(rows - np.median(rows, axis=(1, 2), keepdims=True), 0, None).sum(axis=1)
  centre = (weights * (np.arange(weights.shape[1]) + 0.5)).sum(axis=1) / weights.sum(axis=1)
  return (centre - BLOCK / 2.0 - 4.0) / SPEED


def chirp(t: np.ndarray) -> np.ndarray:
  """The sound at MRI time t (seconds): 200 Hz rising by 800 Hz per second."""
  return (0.5 * np.sin(2 * np.pi * (200.0 * t + 400.0 * t ** 2))).astype(np.float32)


def time_of_sound(samples: np.ndarray, duration: float = 6.0) -> float:
  """Where on the MRI clock the first samples of `samples` lie: correlation with the chirp."""
  probe = samples[:2048]
  reference = chirp(np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE)
  scores = np.correlate(reference, probe, mode="valid")
  return int(np.argmax(scores)) / SAMPLE_RATE


def write_video(path, frame_times, audio_start=None, audio_end=None, codec="libx264"):
  """An mp4 whose frames show their times; with `audio_start`, an AAC track of the chirp from
  audio_start to audio_end on the same clock (a track that starts after the video)."""
  import av

  with av.open(str(path), "w") as container:
    video = container.add_stream(codec, rate=50)
    video.width = video.height = SIDE
    video.pix_fmt = "yuv420p"
    video.time_base = Fraction(1, 1000)
    audio = None
    if audio_start is not None:
      audio = container.add_stream("aac", rate=SAMPLE_RATE)
      audio.layout = "mono"
    for t in frame_times:
      frame = av.VideoFrame.from_ndarray(np.repeat(marker_frame(t)[..., None], 3, axis=2),
                                         format="rgb24")
      frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
      for packet in video.encode(frame):
        container.mux(packet)
    for packet in video.encode():
      container.mux(packet)
    if audio is not None:
      first = int(round(audio_start * SAMPLE_RATE))
      sound = chirp(np.arange(first, int(audio_end * SAMPLE_RATE)) / SAMPLE_RATE)
      for k in range(0, len(sound), 1024):
        frame = av.AudioFrame.from_ndarray(sound[None, k:k + 1024], format="fltp", layout="mono")
        frame.sample_rate, frame.time_base = SAMPLE_RATE, Fraction(1, SAMPLE_RATE)
        frame.pts = first + k
        for packet in audio.encode(frame):
          container.mux(packet)
      for packet in audio.encode():
        container.mux(packet)
  return str(path)


def write_manifest(folder, rows):
  columns = list(dict.fromkeys(k for row in rows for k in row))
  with open(os.path.join(folder, "manifest.csv"), "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)


def _check_data(folder):
  return launcher.run([sys.executable, "-m", "cmri2spec_tf.check_data", f"--data_dir={folder}"],
                      cwd=REPO, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------ one clock per recording
def test_a_delayed_audio_track_is_placed_by_its_start_time(tmp_path):
  """The video's own AAC track starts 0.45 s after its frames (AAC's priming moves its first
  frame a little earlier: whatever FFmpeg presents is the clock). check_data shows the start;
  a segment's frames and sound both land on the segment, the sound within 10 ms."""
  video = write_video(tmp_path / "take.mp4", np.arange(250) / 50, audio_start=0.45,
                      audio_end=5.0)
  rows = [{"subject_id": s, "word": "take", "mri": "take.mp4", "audio": "take.mp4",
           "start_s": start, "end_s": start + 1.5} for s, start in (("A", 1.0), ("B", 2.5))]
  write_manifest(tmp_path, rows)
  records, problems = dataset.manifest_lib.read_manifest(str(tmp_path))
  assert not problems
  frames, _, summary = dataset.read_record(records[0], dataset.spectrogram.SpecParams())
  assert summary.timing.audio_start_s == pytest.approx(0.45, abs=0.06)
  np.testing.assert_allclose(times_of(frames), np.linspace(1.0, 2.5, 26), atol=0.02)
  params = dataset.spectrogram.SpecParams()
  for record in records:
    first_window = dataset.audio_windows(str(tmp_path), [record.recording_id], [0], params)[0, 0]
    assert abs(time_of_sound(first_window) - record.start_s) < 0.010, record.start_s
  checked = _check_data(tmp_path)
  assert checked.returncode == 0, checked.stderr
  lines = checked.stdout.splitlines()
  table = lines[[i for i, x in enumerate(lines) if x.startswith("subject")][0]:]
  assert "audio@ s" in table[0] and "dur diff s" in table[0]
  assert f" {summary.timing.audio_start_s:.3f} " in table[1]
  assert any(line.startswith("audio of ") and "on the MRI clock (applied)" in line
             for line in lines)
  assert video  # the file the rows name


def test_a_variable_frame_rate_video_is_sampled_by_time_when_read_whole(tmp_path):
  """Frames shown at irregular times (a 0.4 s freeze, then faster): the 26 model frames of the
  whole recording are evenly spaced in time, not in frame index."""
  times = np.concatenate([np.arange(0, 1.0, 0.04), [1.4], np.arange(1.42, 3.0, 0.02)])
  video = write_video(tmp_path / "vfr.mp4", times)
  cine = sources.read_mri(video)
  expected = np.linspace(times[0], times[-1], 26)
  np.testing.assert_allclose(times_of(cine.frames), expected, atol=0.04)
  assert cine.info.start_s == pytest.approx(0.0, abs=1e-3)
  assert cine.info.duration_s == pytest.approx(times[-1] + 0.02, abs=0.03)


def test_audio_shorter_than_its_video_warns_then_is_refused(tmp_path):
  """A 3 s video with a WAV 8 % short (a warning naming both files and durations, exit 0), and
  one 30 % short (a problem: a truncated take)."""
  write_video(tmp_path / "take.mp4", np.arange(150) / 50)
  for name, seconds in (("short.wav", 2.76), ("cut.wav", 2.1)):
    soundfile.write(tmp_path / name, chirp(np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE),
                    SAMPLE_RATE)
  write_manifest(tmp_path, [{"subject_id": "A", "word": "w", "mri": "take.mp4",
                             "audio": "short.wav"}])
  warned = _check_data(tmp_path)
  assert warned.returncode == 0, warned.stderr
  (line,) = [x for x in warned.stdout.splitlines() if x.startswith("WARNING")]
  assert "short.wav" in line and "take.mp4" in line and "2.760 s" in line and "3.000 s" in line
  write_manifest(tmp_path, [{"subject_id": "A", "word": "w", "mri": "take.mp4",
                             "audio": "cut.wav"}])
  refused = _check_data(tmp_path)
  assert refused.returncode == 1
  (problem,) = [x for x in refused.stderr.splitlines() if x.startswith("PROBLEM")]
  assert "cut.wav" in problem and "2.100 s" in problem and "3.000 s" in problem


def test_a_segment_where_there_is_no_audio_is_refused_naming_the_file(tmp_path):
  write_video(tmp_path / "take.mp4", np.arange(250) / 50, audio_start=0.8, audio_end=5.0)
  write_manifest(tmp_path, [{"subject_id": "A", "word": "w", "mri": "take.mp4",
                             "audio": "take.mp4", "start_s": 0.1, "end_s": 0.6}])
  result = _check_data(tmp_path)
  assert result.returncode == 1
  assert "lies where there is no audio" in result.stderr and "take.mp4" in result.stderr


# ------------------------------------------------------------------ text is text
def test_labels_and_file_stems_are_compared_after_nfc(tmp_path):
  """"café" typed composed (NFC) in one TextGrid and decomposed (NFD) in another is one word;
  a recording whose name is NFD (as macOS writes it) finds its NFC-named TextGrid."""
  from praatio import textgrid
  from praatio.utilities.constants import Interval

  nfc, nfd = "café", unicodedata.normalize("NFD", "café")
  assert nfc != nfd
  grids = tmp_path / "grids"
  grids.mkdir()
  rows = []
  for subject, stem, label in (("A", "take_a", nfc), ("B", unicodedata.normalize("NFD", "é_b"),
                                                      nfd)):
    write_video(tmp_path / f"{stem}.mp4", np.arange(100) / 50)
    soundfile.write(tmp_path / f"{stem}.wav", chirp(np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE),
                    SAMPLE_RATE)
    grid = textgrid.Textgrid()
    grid.addTier(textgrid.IntervalTier("words", [Interval(0.5, 1.2, label)], 0, 2.0))
    grid.save(str(grids / f"{unicodedata.normalize('NFC', stem)}.TextGrid"), "short_textgrid",
              True)
    rows.append({"subject_id": subject, "word": "x", "mri": f"{stem}.mp4", "audio": f"{stem}.wav"})
  write_manifest(tmp_path, rows)
  summary = alignments.segment_manifest(str(tmp_path / "manifest.csv"), str(grids),
                                        str(tmp_path / "words.csv"), alignments.Choice())
  assert summary["unaligned"] == []
  assert summary["words"] == {nfc: (2, 2)}
  records, problems = dataset.manifest_lib.read_manifest(str(tmp_path / "words.csv"))
  assert not problems and {r.word for r in records} == {nfc}


def test_manifest_words_are_one_word_in_any_normal_form_or_case(tmp_path):
  from cmri2spec_tf.data import manifest

  assert manifest.text_key("Café") == manifest.text_key(unicodedata.normalize("NFD", "CAFÉ"))
  assert manifest.text_key("Café") == "café"


# ------------------------------------------------------------------ odd but valid
def test_a_frames_folder_ignores_os_junk_and_notes_and_lists_them_once(tmp_path):
  folder = tmp_path / "frames"
  folder.mkdir()
  for k in range(60):
    Image.fromarray(marker_frame(k / 20)).save(folder / f"f{k}.png")
  (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
  (folder / "notes.txt").write_text("subject A, take 1")
  assert sources.kind_of(str(folder)) == "frames"
  cine = sources.read_mri(str(folder), frame_rate=20.0, segment=(0.5, 2.5))
  np.testing.assert_allclose(times_of(cine.frames), np.linspace(0.5, 2.5, 26), atol=0.03)
  assert cine.info.ignored == ("notes.txt",)  # desktop.ini is OS junk, like Thumbs.db
  soundfile.write(tmp_path / "a.wav", chirp(np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE),
                  SAMPLE_RATE)
  write_manifest(tmp_path, [{"subject_id": s, "word": "w", "mri": "frames", "audio": "a.wav",
                             "frame_rate": 20, "start_s": a, "end_s": a + 1}
                            for s, a in (("A", 0.2), ("B", 1.5))])
  result = _check_data(tmp_path)
  assert result.returncode == 0, result.stderr
  ignored = [line for line in result.stdout.splitlines() if line.startswith("ignored")]
  assert ignored == [f"ignored in {folder}: notes.txt (not image frames)"]


@pytest.mark.parametrize("stored", [np.float64(50.0), np.array(50.0), np.array([50.0])])
def test_a_frame_rate_stored_as_a_number_or_a_one_element_array(tmp_path, stored):
  frames = np.stack([marker_frame(k / 50) for k in range(150)])
  np.savez(tmp_path / "take.npz", frames=frames, fps=stored)
  with h5py.File(tmp_path / "take.h5", "w") as f:
    f.create_dataset("mri", data=frames).attrs["frame_rate"] = stored
  for entry in (tmp_path / "take.npz", f"{tmp_path / 'take.h5'}:/mri"):
    cine = sources.read_mri(entry, segment=(1.0, 2.0))
    assert cine.info.frame_rate == 50.0 and cine.info.duration_s == pytest.approx(3.0)
    np.testing.assert_allclose(times_of(cine.frames), np.linspace(1.0, 2.0, 26), atol=0.02)


def test_a_frame_rate_that_is_not_one_number_is_named(tmp_path):
  np.savez(tmp_path / "take.npz", frames=np.zeros((10, 8, 8)), fps=np.array([50.0, 25.0]))
  with pytest.raises(DataError, match="frame rate .* is not one real number"):
    sources.read_mri(tmp_path / "take.npz")


def test_a_segment_may_end_where_the_recording_ends(tmp_path):
  """end_s = the duration (last frame time + one period) is accepted; beyond it is not."""
  frames = np.stack([marker_frame(k / 50) for k in range(150)])
  np.save(tmp_path / "take.npy", frames)
  cine = sources.read_mri(tmp_path / "take.npy", frame_rate=50.0, segment=(2.0, 3.0))
  assert times_of(cine.frames)[-1] == pytest.approx(149 / 50, abs=0.02)  # the last frame
  with pytest.raises(DataError, match="outside the recording"):
    sources.read_mri(tmp_path / "take.npy", frame_rate=50.0, segment=(2.0, 3.1))


def test_segment_padding_is_clamped_at_both_ends_of_the_recording():
  choice = alignments.Choice(padding=0.3)
  intervals = {0: [alignments.Interval(0.1, 0.6, "a", 4.0), alignments.Interval(3.5, 3.9, "b", 4.0)]}
  rows = alignments.segment_rows([{"subject_id": "A", "mri": "m", "audio": "a"}], intervals,
                                 ["a", "b"], choice)
  assert [(r["start_s"], r["end_s"]) for r in rows] == [("0.0000", "0.9000"),
                                                        ("3.2000", "4.0000")]


def test_neighbouring_segments_of_a_video_are_decoded_together_and_read_the_same(
    tmp_path, monkeypatch):
  """read_segments (what time-aligned clips and whole-utterance evaluation read) gives the same
  arrays as one read_mri per segment, bit for bit, on a variable-rate video whose first frame is
  at 0.3 s and that freezes for 0.4 s, and decodes it from one seek per READ_SPAN_S of segments
  (3 s here), not one per segment; every segment's frames show its own times, also those that
  start or end in the freeze (its frame and the next are read around it)."""
  times = np.concatenate([np.arange(0.3, 2.0, 0.02), [2.4], np.arange(2.42, 5.4, 0.04)])
  video = write_video(tmp_path / "vfr.mp4", times)
  segments = [(start, start + 0.952) for start in np.arange(0.3, 4.4, 0.5)]  # 9 clips
  monkeypatch.setattr(sources, "READ_SPAN_S", 3.0)
  decodes = []
  decode = sources._decode
  monkeypatch.setattr(sources, "_decode", lambda *a: decodes.append(a[2]) or decode(*a))
  together = list(sources.read_segments(video, None, segments))
  assert [(w.start_s, round(w.end_s, 3)) for w in decodes] == [(0.3, 3.252), (2.8, 5.252)]
  decodes.clear()
  alone = [sources.read_mri(video, None, segment).frames for segment in segments]
  assert len(decodes) == len(segments)  # the per-segment read: a seek each
  for segment, frames, reference in zip(segments, together, alone):
    assert np.array_equal(frames, reference), segment
    np.testing.assert_allclose(times_of(frames), np.linspace(*segment, 26), atol=0.03)
  array = tmp_path / "take.npy"
  np.save(array, np.stack([marker_frame(t) for t in np.arange(0, 3.0, 0.02)]))
  for segment, frames in zip(segments[:3], sources.read_segments(array, 50.0, segments[:3])):
    assert np.array_equal(frames, sources.read_mri(array, 50.0, segment).frames)


def test_a_video_that_starts_after_zero_is_predicted_and_scored_on_its_clock(tmp_path,
                                                                             monkeypatch):
  """Continuous prediction of a video whose first frame lies at 0.5 s reads its clips from
  there (it was refused: its clock was taken to start at 0), and `predict --audio`'s L1 lines
  the prediction up with the sound by both starts: a WAV from 0 s, and the video's own sound
  track from 0.8 s (after the first frame)."""
  from cmri2spec_tf.data.spectrogram import SpecParams, mel_power, normalize_power
  from cmri2spec_tf.serving import inference

  params = SpecParams()
  video = write_video(tmp_path / "late.mp4", np.arange(0.5, 3.5, 0.02), audio_start=0.8,
                      audio_end=3.5)
  read = []
  segments = sources.read_segments
  monkeypatch.setattr(sources, "read_segments",
                      lambda entry, rate, spans: read.extend(spans) or segments(entry, rate, spans))
  translator = inference.Translator(lambda x: np.zeros((len(x), 64, 64, 1), np.float32), params,
                                    "none", None)
  timeline = translator.predict_recording(video)
  assert read[0][0] == pytest.approx(0.5) and read[-1][1] == pytest.approx(3.48, abs=1e-6)
  assert timeline.shape[0] == 64  # 2.98 s from the first frame to the last, not 3.48
  assert abs(timeline.shape[1] - 2.98 * SAMPLE_RATE / params.hop_length) <= 2
  assert inference.recording_info(video).start_s == pytest.approx(0.5)
  # a prediction that is exactly the sound from the first frame on: L1 ~ 0 where lined up
  clock = np.arange(int(3.5 * SAMPLE_RATE)) / SAMPLE_RATE
  perfect = normalize_power(mel_power(chirp(clock[clock >= 0.5 - 1e-9]), params), params)
  soundfile.write(str(tmp_path / "from0.wav"), chirp(clock), SAMPLE_RATE)
  assert inference.l1_against_audio(perfect, str(tmp_path / "from0.wav"), params, 0.5) < 0.005
  assert inference.l1_against_audio(perfect, str(tmp_path / "from0.wav"), params, 0.0) > 0.05
  track = inference.l1_against_audio(perfect, video, params, 0.5)
  assert track < 0.03 < inference.l1_against_audio(perfect, video, params, 0.8)
