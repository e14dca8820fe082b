"""--pairing=time: clips of whole recordings whose frames and target cover the same time span
(a clapperboard fixture: a bright frame and a beep at the same known times, the audio placed by
audio_offset_s), silent clips skipped, pairs by stimulus and relative position."""

import dataclasses

import numpy as np
import pytest
import soundfile

from cmri2spec_tf.data import clips, dataset, manifest
from cmri2spec_tf.data.problems import DataError
from cmri2spec_tf.data.spectrogram import SpecParams

FPS, SR = 50, 22050
FLASHES_S = (1.12, 2.40, 3.78)  # on the MRI clock, on the frame grid (50 fps)
AUDIO_OFFSET_S = 0.3  # the audio's first sample lies here on the MRI clock
DURATION_S = 5.0


def _clapperboard(folder, subject="S01", stimulus="take", offset=AUDIO_OFFSET_S,
                  duration=DURATION_S, flashes=FLASHES_S):
  """A .npy recording (50 fps) with one bright frame at each flash time and a wav whose 1 kHz
  beeps (30 ms) sound at the same times on the MRI clock: the wav starts `offset` s late."""
  rng = np.random.default_rng(0)
  frames = 0.3 + 0.05 * rng.random((int(duration * FPS), 32, 32))
  for t in flashes:
    frames[round(t * FPS)] = 0.95
  np.save(folder / f"{subject}.npy", frames.astype(np.float32))
  samples = int((duration - offset) * SR)
  wave = 1e-4 * rng.standard_normal(samples)
  for t in flashes:
    centre = round((t - offset) * SR)
    n = int(0.03 * SR)
    wave[centre - n // 2:centre - n // 2 + n] += 0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / SR)
  soundfile.write(folder / f"{subject}.wav", wave.astype(np.float32), SR, subtype="FLOAT")
  return f"{subject},{stimulus},{subject}.npy,{subject}.wav,{FPS},{offset}\n"


def _write_manifest(folder, rows):
  (folder / "manifest.csv").write_text(
      "subject_id,word,mri,audio,frame_rate,audio_offset_s\n" + "".join(rows))


def test_each_clip_frames_and_window_cover_the_same_time_span(tmp_path):
  _write_manifest(tmp_path, [_clapperboard(tmp_path)])
  params = SpecParams()
  record = manifest.read_manifest(str(tmp_path))[0][0]
  sound = clips.audio_lib.read_audio(record.audio)
  timing = clips.recording_timing(record, sound)
  assert timing.mri_start_s == 0.0 and timing.mri_duration_s == pytest.approx(DURATION_S)
  assert timing.audio_start_s == pytest.approx(AUDIO_OFFSET_S)
  planned = clips.plan_clips(timing, sound.waveform, params, hop_s=0.1)
  clip_s = params.window_samples / SR
  # clips start where both clocks have data, end before either ends, and hold a beep (silent
  # clips, only noise 70 dB below the beeps, are skipped)
  assert planned[0].start_s >= AUDIO_OFFSET_S - 1e-9
  assert planned[-1].end_s <= DURATION_S + 1e-9
  for clip in planned:
    assert clip.end_s - clip.start_s == pytest.approx(clip_s)
    assert clip.first_sample == round((clip.start_s - AUDIO_OFFSET_S) * SR)
    assert any(clip.start_s - 0.015 < t < clip.end_s + 0.015 for t in FLASHES_S)  # a beep
  checked = 0
  for clip in planned:
    inside = [t for t in FLASHES_S if clip.start_s + 0.05 < t < clip.end_s - 0.05]
    if len(inside) != 1:
      continue
    [frames] = clips.clip_frames(record, [clip])
    target = clips.clip_target(sound.waveform, clip, params)
    assert frames.shape == (26, 128, 128) and target.shape == (64, 64)
    frame_time = clip.start_s + np.argmax(frames.mean(axis=(1, 2))) * clip_s / 25
    audio_time = clip.start_s + np.argmax(target.sum(axis=0)) * params.hop_length / SR
    assert abs(frame_time - inside[0]) <= 0.025, (clip, frame_time)
    assert abs(audio_time - inside[0]) <= 0.02, (clip, audio_time)
    checked += 1
  assert checked >= 6


def test_load_clips_pairs_by_stimulus_and_relative_position(tmp_path):
  """Two subjects read the same stimulus at different rates (their flashes at the same shares of
  their recordings); a third reads another. Pair labels match the first two at equal relative
  positions; the clips, their audio and targets come back from the cache the second time."""
  slow = tuple(t * 1.2 for t in (0.8, 1.6, 2.4))  # each on the 50 fps grid
  even = (0.8, 1.6, 2.4)
  rows = [_clapperboard(tmp_path, "S01", "one", offset=0.0, duration=3.2, flashes=even),
          _clapperboard(tmp_path, "S02", "one", offset=0.0, duration=3.2 * 1.2, flashes=slow),
          _clapperboard(tmp_path, "S03", "two", offset=0.0, duration=3.2, flashes=even)]
  _write_manifest(tmp_path, rows)
  params = SpecParams()
  data = clips.load_clips(str(tmp_path), params, hop_s=0.2, cache_dir=str(tmp_path / "cache"),
                          verbose=False)
  assert data.spectrograms.shape[1:] == (1, 64, 64) and data.clip_audio.shape[1] == 21000
  assert set(data.words) == {"one", "two"} and clips.shared_stimuli(data) == ["one"]
  by_subject = {s: [label for label, who in zip(data.pair_labels, data.subject_ids) if who == s]
                for s in ("S01", "S02", "S03")}
  assert by_subject["S01"][0] == "one@0" and by_subject["S03"][0] == "two@0"
  shared = set(by_subject["S01"]) & set(by_subject["S02"])
  assert len(shared) >= len(by_subject["S01"]) - 2  # the same positions, a step apart at most
  again = clips.load_clips(str(tmp_path), params, hop_s=0.2, cache_dir=str(tmp_path / "cache"),
                           verbose=False)
  assert np.array_equal(again.mri, data.mri) and np.array_equal(again.clip_audio, data.clip_audio)
  assert again.recording_ids == data.recording_ids
  # pairs: S01's clips find same-label partners only in S02, never in S03
  from cmri2spec_tf.data import pairs

  drawn = pairs.sample_pairs(data.subject_ids, data.pair_keys, 1, 1.0, np.random.default_rng(0))
  same = drawn[drawn[:, 4] == 1]
  assert len(same) > 0
  assert all(data.pair_labels[a] == data.pair_labels[b] and data.subject_ids[a] !=
             data.subject_ids[b] for a, _, b, _, _ in same)


def test_nothing_shared_says_pairdisen_is_off_and_segments_are_refused(tmp_path, capsys):
  _write_manifest(tmp_path, [_clapperboard(tmp_path, "S01", "one"),
                             _clapperboard(tmp_path, "S02", "two")])
  data = clips.load_clips(str(tmp_path), SpecParams(), hop_s=0.5,
                          cache_dir=str(tmp_path / "cache"), verbose=False)
  clips.describe(data, 0.5)
  line = capsys.readouterr().out
  assert "KL pairs: none" in line and "PairDisen is off" in line
  record = dataclasses.replace(manifest.read_manifest(str(tmp_path))[0][0], start_s=1.0,
                               end_s=2.0)
  with pytest.raises(DataError, match="use --pairing=word"):
    clips.recording_timing(record, clips.audio_lib.read_audio(record.audio))


def test_window_audio_of_clips_is_their_own_sound(tmp_path):
  _write_manifest(tmp_path, [_clapperboard(tmp_path)])
  data = clips.load_clips(str(tmp_path), SpecParams(), hop_s=0.5,
                          cache_dir=str(tmp_path / "cache"), verbose=False)
  sound = dataset.window_audio(data, str(tmp_path), [0, 1], [0])
  assert sound.shape == (2, 1, 21000)
  wave, _ = soundfile.read(tmp_path / "S01.wav", dtype="float32")
  first = round((float(data.recording_ids[0].split("@")[-1].split("-")[0]) - AUDIO_OFFSET_S) * SR)
  np.testing.assert_allclose(sound[0, 0], wave[first:first + 21000], atol=1e-6)


def test_time_aligned_training_and_evaluation_on_the_rtmri_phantom(tmp_path, rtmri_phantom,
                                                                  smoke_vocoder):
  """train --pairing=time on the real-time phantom's whole recordings (recordings.csv: no
  TextGrid read) and evaluate it: clips cut, cached, trained on and scored; then a vocoder
  fine-tuned on the run's predictions."""
  import json
  import shutil
  import sys

  from tests import launcher
  from tests.conftest import REPO

  data = tmp_path / "rtmri"  # the phantom without its TextGrids: no word alignment is needed
  shutil.copytree(rtmri_phantom[0], data, ignore=shutil.ignore_patterns("alignments"))

  def run(*args):
    result = launcher.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result

  trained = run("cmri2spec_tf.train", "--flagfile=smoke", f"--data_dir={data}/recordings.csv",
                f"--model_dir={tmp_path}/run", f"--cache_dir={tmp_path}/cache", "--pairing=time",
                "--clip_hop_s=0.5", "--n_images=1", "--val_window_stride=1")
  line = next(l for l in trained.stdout.splitlines() if l.startswith("time-aligned clips: "))
  clip_count = int(line.split()[2])
  assert 4 * 4 <= clip_count <= 4 * 8 and "every 0.5 s from 4 subjects" in line
  assert "KL pairs: same stimulus at the same relative position" in line
  assert len(list((tmp_path / "cache").glob("*.npz"))) == clip_count  # one entry per clip
  assert " clips), held out " in trained.stdout
  config = json.loads((tmp_path / "run" / "config.json").read_text())
  assert config["pairing"] == "time" and config["clip_hop_s"] == 0.5
  evaluated = run("cmri2spec_tf.evaluate", f"--model_dir={tmp_path}/run", "--audio_windows=0")
  report = json.loads((tmp_path / "run" / "evaluation.json").read_text())
  clips_scored = report["methods"]["cmri2spec"]["recordings"]
  assert all(r["subject_id"] in report["heldout_subjects"] for r in clips_scored)
  assert all(0 < r["l1"] < 0.5 for r in clips_scored)
  floor = report["references"]["recording_mean"]["overall"]["l1"]
  assert floor == 0  # one target per input: no ambiguity, no floor above 0
  # whole utterances: the 2 held-out recordings synthesized continuously and scored whole
  whole = report["utterances"]["methods"]
  assert set(whole) == {"truth", "cmri2spec", "mean", "nearest_neighbour"}
  assert whole["truth"]["overall"]["n_recordings"] == 2
  assert whole["truth"]["overall"]["griffin_lim_stoi"] > 0.7  # the ceiling: its own timeline
  for name in ("cmri2spec", "mean", "nearest_neighbour"):
    total = whole[name]["overall"]
    assert 0 < total["l1"] < 0.5 and -1 <= total["griffin_lim_stoi"] <= 1
  assert "whole utterances (2 held-out recordings" in evaluated.stdout
  page = (tmp_path / "run" / "report.html").read_text()
  assert page.count("<h3>Whole utterance (") == 2  # one per held-out subject, with its players
  assert page.count('<audio controls') == 2 * (2 + 3)  # a window's, a whole utterance's
  _finetune_a_vocoder_on_the_run(tmp_path / "run", smoke_vocoder[0], tmp_path, run)


def _finetune_a_vocoder_on_the_run(model_dir, base, tmp_path, run):
  """vocoder --finetune_on: the run's training subjects only, its split and fold, starting
  from --init_from's weights (learning rate 0 here: exactly them) and leaving that folder as it
  was; other folds and a folder that holds a vocoder are refused."""
  import json
  import sys

  from cmri2spec_tf.speech import vocoders
  from tests import launcher
  from tests.conftest import REPO

  before = {f.name: f.read_bytes() for f in base.iterdir() if f.is_file()}
  command = [sys.executable, "-m", "cmri2spec_tf.vocoder", f"--finetune_on={model_dir}",
             f"--init_from={base}", f"--model_dir={tmp_path}/voc", "--epochs=1",
             "--steps_per_epoch=1", "--batch_size=2", "--learning_rate=0", "--verbose=0"]
  tuned = run(*command[2:])
  assert "voicing the predictions of the translator in" in tuned.stdout
  info = json.loads((tmp_path / "voc" / vocoders.VOCODER_JSON).read_text())
  summary = json.loads((model_dir / "summary.json").read_text())
  assert info["training_subjects"] == summary["training_subjects"]
  assert len(summary["training_subjects"]) == 2
  assert not set(info["training_subjects"]) & set(summary["heldout_subjects"])
  config = json.loads((model_dir / "config.json").read_text())
  assert [info["config"][k] for k in ("split", "fold", "split_seed")] == \
      [config[k] for k in ("split", "fold", "split_seed")]
  base_info = json.loads((base / vocoders.VOCODER_JSON).read_text())
  assert info["steps"] == base_info["steps"] + 1
  assert [info["config"][k] for k in ("channels", "blocks")] == \
      [base_info["config"][k] for k in ("channels", "blocks")]  # the start's, not the defaults
  assert [stage["finetune_on"] for stage in info["stages"]] == [None, str(model_dir)]
  load = lambda folder: vocoders.load(str(folder)).model
  for tuned_w, base_w in zip(load(tmp_path / "voc").get_weights(), load(base).get_weights()):
    np.testing.assert_array_equal(tuned_w, base_w)
  assert {f.name: f.read_bytes() for f in base.iterdir() if f.is_file()} == before
  refused = [launcher.run(command + extra, cwd=REPO, capture_output=True, text=True, timeout=300)
             for extra in (["--fold=1", f"--model_dir={tmp_path}/other"], [])]
  assert [r.returncode for r in refused] == [2, 2]
  assert "the run's own split and fold are used" in refused[0].stderr
  assert "already holds a vocoder" in refused[1].stderr
  assert not (tmp_path / "other").exists()


def test_overlap_add_puts_each_window_on_the_recordings_mel_timeline():
  """Windows cut from a recording's own mel timeline at their start times (every 0.25 s, the
  last one at the end) and overlap-added give that timeline back."""
  from cmri2spec_tf.data import spectrogram

  params = SpecParams()
  t = np.arange(int(3.0 * SR)) / SR
  wave = (0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t)).astype(np.float32)
  truth = spectrogram.normalize_power(spectrogram.mel_power(wave, params), params)
  hop_frames = round(0.25 * SR / params.hop_length)
  firsts = list(range(0, truth.shape[1] - 64 + 1, hop_frames))
  starts = [f * params.hop_length / SR for f in firsts]
  windows = np.stack([truth[:, f:f + 64] for f in firsts])
  timeline = spectrogram.overlap_add(starts, windows, params, truth.shape[1])
  covered = firsts[-1] + 64
  assert timeline.shape == (64, covered)
  np.testing.assert_allclose(timeline, truth[:, :covered], atol=1e-6)
