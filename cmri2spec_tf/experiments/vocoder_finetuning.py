"""The vocoder fine-tuned on a translator's own output (`vocoder --finetune_on=RUN`).

Each whole recording of the run's training subjects is synthesized continuously, as evaluation
synthesizes a held-out one (evaluation/utterances.py: clips every clip_hop_s of the run,
translated with its last epoch's weights and overlap-added on the mel timeline), and the vocoder
learns to turn that predicted timeline into the recording's real audio over the same span (frame
j at sample j x hop): the mismatch between the spectrograms a vocoder was trained on and those
the translator outputs (smoother, blurred in time) is what it learns to bridge, as HiFi-GAN is
fine-tuned on Tacotron 2's ground-truth-aligned predictions. The recordings: the run's own
manifest for a time-aligned run; a word run's manifest holds segments, so `--data_dir` must then
name the whole recordings (index's recordings.csv). The run's held-out subjects (summary.json)
are never read, so the fine-tuned vocoder can still be scored on them.
"""

from __future__ import annotations

import dataclasses

from cmri2spec_tf.base.errors import ConfigError
from cmri2spec_tf.base.progress import Progress
from cmri2spec_tf.data import manifest as manifest_lib
from cmri2spec_tf.data.problems import DataError, DatasetProblems, Problem
from cmri2spec_tf.data.spectrogram import SpecParams
from cmri2spec_tf.evaluation import utterances
from cmri2spec_tf.speech import vocoders
from cmri2spec_tf.training import runs

WEIGHTS = "last"  # as evaluate scores a run: nothing chosen on the held-out subjects


def finetune(config: vocoders.VocoderConfig) -> dict:
  """Trains the vocoder of `config` (config.finetune_on: the run) on the run's predictions;
  returns its vocoder.json."""
  vocoders.check_model_dir(config)  # refused before the run's recordings are synthesized
  config, params, material = predicted_material(config)
  return vocoders.train(config, params, material)


def predicted_material(config: vocoders.VocoderConfig
                       ) -> tuple[vocoders.VocoderConfig, SpecParams, vocoders.Material]:
  """(config with the run's split, fold and split_seed, the run's SpecParams, the predicted
  timelines and real audio of its training subjects' whole recordings)."""
  run = config.finetune_on
  run_config, params = runs.load_config(run), runs.load_spec_params(run)
  training, heldout = run_subjects(run)
  manifest = config.data_dir or run_config.data_dir
  records = whole_recordings(manifest, training, heldout)
  translator, _, _ = runs.load_translator(run, WEIGHTS)
  progress = Progress("predicting", len(records))
  waveforms, mels, problems = [], [], []
  for i, record in enumerate(records):
    try:
      synthesized = utterances.synthesize(record, translator.predict_on_batch, None, params,
                                          run_config.clip_hop_s, run_config.model)
    except DataError as e:
      problems.append(e.problem)
      continue
    if synthesized:  # a recording shorter than one clip has nothing to voice
      waveforms.append(synthesized["audio"])
      mels.append(synthesized[run_config.model].T)
    progress.update(i + 1)
  progress.close()
  if problems:
    raise DatasetProblems(problems)
  if not waveforms:
    raise DatasetProblems([Problem(manifest, "no recording of the run's training subjects is "
                                   "long enough to synthesize (one clip)")])
  subjects = sorted({r.subject_id for r in records})
  config = dataclasses.replace(config, data_dir=manifest, split=run_config.split,
                               fold=run_config.fold, split_seed=run_config.split_seed,
                               speeds=(1.0,))  # predictions are voiced at the speed they have
  spectrograms = (f"the predictions of the translator in {run} ({WEIGHTS} epoch, a clip every "
                  f"{run_config.clip_hop_s:g} s)")
  return config, params, vocoders.Material(waveforms, subjects, mels, spectrograms)


def run_subjects(run: str) -> tuple[set[str] | None, set[str]]:
  """(training subjects or None where the run did not record them, held-out subjects) of a
  finished run, from its summary.json."""
  summary = runs.read_summary(run)
  if summary is None or "heldout_subjects" not in summary:
    raise ConfigError(f"--finetune_on={run}: no {runs.SUMMARY_JSON}; fine-tune on a run that "
                      "has finished training")
  training = summary.get("training_subjects")
  return (set(training) if training is not None else None), set(summary["heldout_subjects"])


def whole_recordings(manifest: str, training: set[str] | None, heldout: set[str]
                     ) -> list[manifest_lib.Record]:
  """The manifest's rows of the training subjects (where the run did not record them: every
  subject it did not hold out); each must be a whole recording."""
  records, problems = manifest_lib.read_manifest(manifest)
  if problems:
    raise DatasetProblems(problems)
  mine = [r for r in records if r.subject_id not in heldout
          and (training is None or r.subject_id in training)]
  segments = [r for r in mine if r.segment is not None]
  if segments:
    raise DatasetProblems([Problem(manifest, f"{len(segments)} rows with start_s/end_s (word "
                                   f"segments, the first of {segments[0].mri}); fine-tuning "
                                   "voices whole recordings: give --data_dir= a manifest of "
                                   "them (index's recordings.csv)")])
  if not mine:
    raise DatasetProblems([Problem(manifest, "no recording of the run's training subjects")])
  return mine
