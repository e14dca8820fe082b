"""Floor 3, the synthetic speech-MRI phantom: articulators that draw the images and drive the
sound, written as cine DICOM series (phantom.py) or real-time recordings (phantom_rtmri.py).

May import: data, base.
"""
