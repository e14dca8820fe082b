"""Evaluates a trained run on the held-out subjects of its fold (paper Table 2's L1); the work is
evaluation/evaluation.py's.

  python -m cmri2spec_tf.evaluate --model_dir=runs/demo [--data_dir=D] [--weights=model|last|best]
      [--vocoder=runs/vocoder] [--audio_windows=3] [--utterances=recordings.csv]

Prints overall L1 / MSE / L1 in dB for the model and the mean-spectrogram and nearest-neighbour
baselines, then per-subject rows, then the speech metrics (STOI, ESTOI, MCD, MCD-DTW, PESQ) of
each method's sound through Griffin-Lim and the --vocoder, beside the ceiling (the true
spectrogram through the same vocoder); writes the run's evaluation report, per-subject CSV,
predictions and listening report (evaluation.json, evaluation.csv, predictions.npz,
report.html) and, for the paper's model, latent.png (its latent space: `probe` says more).
The data folder, fold and split default to those the run was trained with. A time-aligned run
(--pairing=time) is also scored on its held-out subjects' whole recordings, synthesized
continuously (evaluation/utterances.py); --utterances=MANIFEST does the same for any run, from
a manifest of whole recordings (a word-segment run: the recordings its words were cut from).
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("model_dir", None, "A training run's model_dir.", required=True)
  flags.DEFINE_string("data_dir", None, "Dataset folder (default: the one the run trained on).")
  flags.DEFINE_string("cache_dir", None, "Preprocessing cache (default: the run's).")
  flags.DEFINE_enum("weights", "model", ["model", "last", "best"], "model: the run's model "
                    "(the last epoch, or the one chosen on the run's --selection_subjects; "
                    "nothing chosen on the held-out subjects); last: the last epoch; best: the "
                    "epoch chosen on the selection subjects, or without them the one with the "
                    "best held-out L1 (optimistic).")
  flags.DEFINE_string("vocoder", None, "A vocoder folder (python -m cmri2spec_tf.vocoder) to "
                      "score beside Griffin-Lim.")
  flags.DEFINE_integer("audio_windows", 3, "Windows per held-out recording scored with the "
                       "speech metrics (0: none).", lower_bound=0)
  flags.DEFINE_string("utterances", None, "A manifest of whole recordings (e.g. index's or the "
                      "rtMRI phantom's recordings.csv): also score the held-out subjects' "
                      "recordings synthesized continuously (default: a time-aligned run's own "
                      "data).")


def main(argv):
  del argv
  from cmri2spec_tf.evaluation import evaluation
  from cmri2spec_tf.training import runs
  from cmri2spec_tf.data.problems import DataError, DatasetProblems

  try:
    report = evaluation.evaluate_run(FLAGS.model_dir, FLAGS.data_dir, FLAGS.cache_dir,
                                     FLAGS.weights, vocoder=FLAGS.vocoder,
                                     audio_windows=FLAGS.audio_windows,
                                     utterances=FLAGS.utterances)
  except DatasetProblems as e:
    cli.fail(f"cannot evaluate on this dataset:\n{e}")
  except DataError as e:  # an audio file that cannot be read again
    cli.fail(f"cannot evaluate on this dataset:\n{e}")
  except OSError as e:  # missing or unreadable files of the run or the vocoder
    cli.fail(f"error: {e}")
  print(evaluation.format_report(report))
  print(f"wrote {runs.EVALUATION_JSON}, {runs.EVALUATION_CSV}, {runs.PREDICTIONS_NPZ} and "
        f"{runs.REPORT_HTML} in {FLAGS.model_dir}")


def entry():
  cli.start(define_flags, main)


if __name__ == "__main__":
  entry()
