"""Manifests of the recordings in a folder laid out like a public speech-MRI dataset.

Each layout is a set of file patterns under the root (case of extensions ignored); a recording
is one row: subject_id, word (the recording's task or sentence label, until `segment` cuts it
into words), mri, audio, and frame_rate where the layout needs one. Paths are written relative
to the manifest's folder, which must be the root or a folder above it.

  layout      files (under ROOT)                                  row
  usc75       subNNN/2drt/video/<stem>_video.mp4                  subject subNNN, word <task>
              subNNN/2drt/audio/<stem>_audio.wav (denoised)       from <stem> =
              (USC 75-speaker: stem subNNN_2drt_NN_<task>_rN)     subNNN_2drt_NN_<task>_rN;
                                                                  audio: the wav, else the
                                                                  video's own track
  usctimit    <speaker>/avi_withaudio/<name>.avi (audio inside)   subject <speaker>, word:
              (USC-TIMIT: usctimit_mri_<spk>_<from>_<to>.avi)     <from>_<to> (sentences), or
                                                                  <name>; audio: the avi
  frames_wav  <subject>/<utterance>/ (a folder of .png/.jpg/.tif  subject, word <utterance>;
              frames) and <subject>/<utterance>.wav               frame_rate from --frame_rate
              (ATR503-style)
  video_wav   <subject>/**/<name>.<mp4|avi|mov|mkv|webm|m4v>      subject, word <name>; audio:
              with <name>.wav beside it, or the video's own      the wav, else the video
              audio track
Files that match no pattern are ignored; a recording whose audio is missing is listed as a
problem (the video_wav and usc75 layouts fall back to the video's own track).
"""

from __future__ import annotations

import csv
import io
import os
import re

from cmri2spec_tf.data.manifest import text_key
from cmri2spec_tf.data.problems import DataError
from cmri2spec_tf.data.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

LAYOUTS = ("usc75", "usctimit", "frames_wav", "video_wav")
COLUMNS = ("subject_id", "word", "mri", "audio", "frame_rate")
USC75_STEM = re.compile(r"^(sub\d+)_2drt_\d+_(?P<task>.+?)_r\d+$", re.IGNORECASE)
USCTIMIT_NAME = re.compile(r"^usctimit_mri_[^_]+_(?P<span>\d+_\d+)$", re.IGNORECASE)


def _files(folder: str, extensions) -> list[str]:
  if not os.path.isdir(folder):
    return []
  return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                if not n.startswith(".") and os.path.splitext(n)[1].lower() in extensions)


def _subjects(root: str) -> list[str]:
  return sorted(n for n in os.listdir(root) if not n.startswith(".")
                and os.path.isdir(os.path.join(root, n)))


def _by_lower_name(paths) -> dict[str, str]:
  """{text_key of the file name: path}: one listing answers every lookup in any case and any
  Unicode normal form (a name in NFD, as macOS writes it, matches one typed in NFC)."""
  return {text_key(os.path.basename(p)): p for p in sorted(paths)}


def usc75(root: str, frame_rate: float | None) -> list[dict]:
  rows = []
  for subject in _subjects(root):
    wavs = _by_lower_name(_files(os.path.join(root, subject, "2drt", "audio"), (".wav",)))
    for video in _files(os.path.join(root, subject, "2drt", "video"), (".mp4",)):
      stem = re.sub(r"_video$", "", os.path.splitext(os.path.basename(video))[0],
                    flags=re.IGNORECASE)
      match = USC75_STEM.match(stem)
      wav = wavs.get(text_key(f"{stem}_audio.wav"))
      rows.append({"subject_id": subject, "word": match["task"] if match else stem,
                   "mri": video, "audio": wav or video, "frame_rate": frame_rate})
  return rows


def usctimit(root: str, frame_rate: float | None) -> list[dict]:
  rows = []
  for speaker in _subjects(root):
    for avi in _files(os.path.join(root, speaker, "avi_withaudio"), (".avi",)):
      name = os.path.splitext(os.path.basename(avi))[0]
      match = USCTIMIT_NAME.match(name)
      rows.append({"subject_id": speaker, "word": match["span"] if match else name, "mri": avi,
                   "audio": avi, "frame_rate": frame_rate})
  return rows


def frames_wav(root: str, frame_rate: float | None) -> list[dict]:
  rows = []
  for subject in _subjects(root):
    wavs = _by_lower_name(_files(os.path.join(root, subject), (".wav",)))
    for utterance in _subjects(os.path.join(root, subject)):
      folder = os.path.join(root, subject, utterance)
      if not _files(folder, IMAGE_EXTENSIONS):
        continue
      wav = wavs.get(text_key(utterance + ".wav"))  # <subject>/<utterance>.wav beside the folder
      if wav is None:
        raise DataError(folder, f"no {utterance}.wav beside this frames folder")
      rows.append({"subject_id": subject, "word": utterance, "mri": folder, "audio": wav,
                   "frame_rate": frame_rate})
  return rows


def video_wav(root: str, frame_rate: float | None) -> list[dict]:
  rows = []
  for subject in _subjects(root):
    for folder, _, names in sorted(os.walk(os.path.join(root, subject))):
      wavs = _by_lower_name(os.path.join(folder, n) for n in names if n.lower().endswith(".wav"))
      for name in sorted(names):
        stem, extension = os.path.splitext(name)
        if name.startswith(".") or extension.lower() not in VIDEO_EXTENSIONS:
          continue
        video = os.path.join(folder, name)
        rows.append({"subject_id": subject, "word": stem, "mri": video,
                     "audio": wavs.get(text_key(stem + ".wav"), video), "frame_rate": frame_rate})
  return rows


READERS = {"usc75": usc75, "usctimit": usctimit, "frames_wav": frames_wav,
           "video_wav": video_wav}


def index(layout: str, root: str, out: str, frame_rate: float | None = None) -> list[dict]:
  """Writes the manifest of `root`'s recordings to `out` (atomically); returns its rows."""
  from cmri2spec_tf.base import atomic

  if layout not in READERS:
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
  if not os.path.isdir(root):
    raise DataError(root, "dataset folder not found")
  rows = READERS[layout](root, frame_rate)
  if not rows:
    raise DataError(root, f"no recording laid out as {layout} (see `index --help` for the "
                    "file patterns)")
  out_dir = os.path.dirname(os.path.abspath(out))
  for row in rows:
    for column in ("mri", "audio"):
      relative = os.path.relpath(os.path.abspath(row[column]), out_dir)
      if relative.startswith(".."):
        raise DataError(out, "the manifest must be written in the dataset folder or a folder "
                        "above it (its paths may not leave its folder)")
      row[column] = relative
  text = io.StringIO()
  writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
  writer.writeheader()
  writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
  atomic.write_text(out, text.getvalue())
  return rows
