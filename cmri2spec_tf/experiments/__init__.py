"""Floor 9, the jobs the commands run: one training run on one fold with its TensorBoard
monitoring (training_run.py, callbacks.py), the Table 2 study over rows, seeds and folds
(study.py), and the vocoder fine-tuned on a run's predictions (vocoder_finetuning.py).
May import: serving, evaluation, training, speech, models, synthetic, data, base.
"""
