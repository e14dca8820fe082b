"""Translates cine MRI series with a model served by TF Serving (its REST predict API) and writes
the same files as `predict`; the work is serving/inference.py's and serving/savedmodel.py's.

  python -m cmri2spec_tf.serve_request --url=http://localhost:8501/v1/models/cmri2spec \\
      --mri=scans/S01/mri --out=out/S01 [--spec_params=serving/cmri2spec/1/assets/spec_params.json]

--mri is one series (with --batch a folder of series), read exactly as in training; every
series is read before anything is sent. For each: PREFIX.npy, PREFIX.png and PREFIX.wav.
--spec_params is the export's asset (the package's fixed normalization when not given).
"""

from absl import flags

from cmri2spec_tf import cli

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("url", None, "TF Serving model URL, e.g. "
                      "http://localhost:8501/v1/models/cmri2spec (or .../versions/1).",
                      required=True)
  cli.define_series_flags()
  flags.DEFINE_enum("signature", "serving_default", ["serving_default", "mel_db"],
                    "The export's signature to call.")
  flags.DEFINE_string("spec_params", None, "The export's assets/spec_params.json.")


def main(argv):
  del argv
  from cmri2spec_tf.serving import inference
  from cmri2spec_tf.data.problems import DatasetProblems
  from cmri2spec_tf.data.spectrogram import SpecParams

  try:
    params = None
    if FLAGS.spec_params:
      with open(FLAGS.spec_params) as f:
        params = SpecParams.from_json(f.read())
    model = inference.remote(FLAGS.url, params, FLAGS.signature)
    written = inference.predict_files(model, FLAGS.mri, FLAGS.out, FLAGS.batch)
  except DatasetProblems as e:
    cli.fail(f"cannot read the MRI input; nothing written:\n{e}")
  except (OSError, ValueError) as e:  # unreachable server, its refusal, unreadable params
    cli.fail(f"error: {e}; nothing written")
  for prefix, _ in written:
    print(f"wrote {prefix}.png, {prefix}.npy, {prefix}.wav")


def entry():
  cli.start(define_flags, main, report_devices=False)  # the server computes


if __name__ == "__main__":
  entry()
