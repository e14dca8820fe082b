"""Floor 2, the data: files -> readers (every MRI source, DICOM, audio) -> spectrogram targets ->
manifests, caches and datasets -> subject splits and pairs (tf.data); bad input named by file.

May import: base.
"""
