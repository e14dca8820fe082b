"""Floor 8, a trained translator in use: the SavedModel for TF Serving (signatures, safe export,
REST request), and `cmri2spec_tf.load` (predict, continuous synthesis, dB, audio, files).

May import: evaluation, training, speech, models, synthetic, data, base.
"""
