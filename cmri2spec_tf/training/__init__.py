"""Floor 6, learning: what defines a run (config), the objective (losses, eqs. 1-6), the Keras
trainers, tf.distribute strategies, and the run folder (every file a run writes, checkpoints,
resume, loading a finished run). May import: speech, models, synthetic, data, base.
"""
