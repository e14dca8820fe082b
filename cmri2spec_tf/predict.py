"""Translates cine MRI series into mel spectrograms, pictures and sound; the work is
inference.py's.

  python -m cmri2spec_tf.predict --model=runs/demo --mri=scans/S01/mri --out=out/S01
  python -m cmri2spec_tf.predict --model=serving/cmri2spec/1 --mri=scans/ --out=out/ --batch

--model is a training run's model_dir (best held-out weights) or an exported SavedModel version
folder (`export`). --mri is one series (a folder of single-frame DICOM files or one multi-frame
file), read by the data layer exactly as in training; with --batch, every entry of the folder
--mri is one series and --out is a folder that gets one set of files per series.

For each series: PREFIX.npy (the normalized mel spectrogram, float32 [64, 64], mel bins
bottom-up x time), PREFIX.png (it, with time in seconds and frequency in Hz) and PREFIX.wav
(Griffin-Lim, mono, 22,050 Hz, window_samples long). Every series is read before anything is
written: a bad one stops the command with its file and problem, exit 1, no output.
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("model", None, "A training run's model_dir or an exported SavedModel.",
                      required=True)
  cli.define_series_flags()


def main(argv):
  del argv
  from cmri2spec_tf import inference
  from cmri2spec_tf.data.problems import DatasetProblems

  try:
    prefixes = inference.predict_files(FLAGS.model, FLAGS.mri, FLAGS.out, FLAGS.batch)
  except DatasetProblems as e:
    cli.fail(f"cannot read the MRI input; nothing written:\n{e}")
  except OSError as e:  # missing or unreadable files of the run
    cli.fail(f"error: {e}; nothing written")
  for prefix in prefixes:
    print(f"wrote {prefix}.png, {prefix}.npy, {prefix}.wav")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
