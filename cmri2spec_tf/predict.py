"""Translates cine MRI series into mel spectrograms, pictures and sound; the work is
serving/inference.py's.

  python -m cmri2spec_tf.predict --model=runs/demo --mri=scans/S01/mri --out=out/S01
  python -m cmri2spec_tf.predict --model=serving/cmri2spec/1 --mri=scans/ --out=out/ --batch

--model is a training run's model_dir (its best weights: runs.WEIGHTS_CHOICES) or an exported SavedModel version
folder (`export`). --mri is one series (a folder of single-frame DICOM files or one multi-frame
file), read by the data layer exactly as in training; with --batch, every entry of the folder
--mri is one series and --out is a folder that gets one set of files per series.

For each series: PREFIX.npy (the normalized mel spectrogram, float32 [64, 64], mel bins
bottom-up x time), PREFIX.png (it, with time in seconds and frequency in Hz) and PREFIX.wav
(Griffin-Lim, or the neural vocoder of --vocoder; mono, 22,050 Hz, window_samples long). Every series is read before anything is
written: a bad one stops the command with its file and problem, exit 1, no output.

Long recordings (a video, image frames, an array, HDF5: any source but a DICOM cine series) are
translated whole by continuous synthesis: clips of one window's duration every --hop_s
seconds, their predicted windows overlap-added into one [64, N] spectrogram of the recording's
length (and its sound), from its first frame on its clock (a video's first frame may lie after
0). With --audio (the recording's true sound, e.g. the video itself) the L1 against the
recording's own spectrogram of the same span is printed, the sound placed by its own start (a
video's sound track may start before or after its first frame).
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("model", None, "A training run's model_dir or an exported SavedModel.",
                      required=True)
  cli.define_series_flags()
  flags.DEFINE_float("hop_s", 0.25, "Long recordings: seconds between clip starts.",
                     lower_bound=0.01)
  flags.DEFINE_float("clip_s", None, "Long recordings: clip duration in seconds (default: one "
                     "window, 21,000 samples at 22,050 Hz).", lower_bound=0.05)
  flags.DEFINE_float("frame_rate", None, "Frames per second of image frames or arrays that do "
                     "not say.", lower_bound=0.001)
  flags.DEFINE_string("vocoder", None, "A vocoder folder (python -m cmri2spec_tf.vocoder) for "
                      "the .wav files (default: Griffin-Lim).")
  flags.DEFINE_string("audio", None, "The recording's true sound (a file, or the video itself): "
                      "print the L1 of the prediction against it.")


def _first_frame_s(mri: str, batch: bool, frame_rate: float | None) -> float:
  """Where the first prediction's first mel frame lies on its recording's clock: its first
  frame's time (a video's may lie after 0); 0 for a DICOM cine series, which has no clock."""
  from cmri2spec_tf.data import sources
  from cmri2spec_tf.serving import inference

  first = inference.list_series(mri, batch)[0]
  if sources.kind_of(first) == "dicom":
    return 0.0
  return inference.recording_info(first, frame_rate).start_s or 0.0


def main(argv):
  del argv
  from cmri2spec_tf.serving import inference
  from cmri2spec_tf.data.problems import DataError, DatasetProblems

  continuous = inference.Continuous(FLAGS.hop_s, FLAGS.clip_s, FLAGS.frame_rate)
  try:
    written = inference.predict_files(FLAGS.model, FLAGS.mri, FLAGS.out, FLAGS.batch,
                                      continuous, FLAGS.vocoder)
    if FLAGS.audio:
      l1 = inference.l1_against_audio(written[0][1], FLAGS.audio,
                                      inference.load_params(FLAGS.model),
                                      _first_frame_s(FLAGS.mri, FLAGS.batch, FLAGS.frame_rate))
  except DataError as e:
    cli.fail(f"cannot read the audio: {e}")
  except DatasetProblems as e:
    cli.fail(f"cannot read the MRI input; nothing written:\n{e}")
  except OSError as e:  # missing or unreadable files of the run
    cli.fail(f"error: {e}; nothing written")
  for prefix, spectrogram in written:
    print(f"wrote {prefix}.png, {prefix}.npy, {prefix}.wav ({spectrogram.shape[-1]} mel frames)")
  if FLAGS.audio:
    print(f"L1 against {FLAGS.audio}: {l1:.4f}")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
