"""Floor 9, the jobs the train and ablation commands run: one training run on one fold with its
TensorBoard monitoring (training_run.py, callbacks.py), and the Table 2 study over rows, seeds
and folds (study.py). May import: serving, evaluation, training, speech, models, synthetic,
data, base.
"""
