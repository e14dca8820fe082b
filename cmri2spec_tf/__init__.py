"""cmri2spec_tf: Keras/TensorFlow implementation of CMRI2SPEC (Liu et al., ICASSP 2022).

Cine MRI sequence of the vocal tract -> mel spectrogram of the speech recorded with it.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) hides our own output.
# Users can still set TF_CPP_MIN_LOG_LEVEL themselves.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN kernels: TensorFlow turns them on by default only on some x86 CPUs. On the 2-core AMD
# EPYC we develop on they made Conv3D ~10x and a whole training step ~5x faster. Takes effect
# only when this package is imported before TensorFlow; TF_ENABLE_ONEDNN_OPTS=0 turns it off.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
