"""MRI sources: a manifest's `mri` entry, whatever holds the frames -> the model's input grid.

Real-time MRI datasets come as video, image frames, arrays or HDF5 rather than DICOM cine
series. Every source gives raw grey frames [T, H, W] and, where it knows one, a frame rate; then
the same steps as for DICOM follow (dicom.py): square field of view resized to 128 x 128,
per-sequence percentile normalization to [0, 1], linear resampling to 26 frames.

  kind      what the entry is                                      frame rate from
  dicom     a folder of DICOM files, or one (multi-frame) file     (none: cine timing)
  video     .mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg (PyAV,       the video stream
            FFmpeg: any codec it decodes)
  frames    a folder of .png .jpg .jpeg .tif .tiff .bmp images,    the manifest's frame_rate
            8 or 16 bit, in natural order (frame2 before frame10)
  array     .npy [T, H, W], or .npz holding one such array (or     a `frame_rate` or `fps`
            one named `frames`)                                    entry of the .npz, else the
                                                                   manifest's frame_rate
  hdf5      FILE.h5:/path/to/dataset (or a FILE.h5 holding one     the dataset's `frame_rate`
            3-D dataset), read with h5py                           or `fps` attribute, else the
                                                                   manifest's frame_rate
Colour frames become luminance with the ITU-R BT.601 weights, as colour DICOM does; arrays of
shape [T, H, W, 1|3|4] are accepted the same way. The manifest's frame_rate, when given,
overrides what a file says. Problems raise DataError naming the file.

The clock (docs/method.md, "Timing"): every source but a DICOM cine series places its frames in
time. Frame i of frames, arrays and HDF5 lies at i / fps; a video's frames lie at their own
presentation timestamps (PyAV, FFmpeg's edit lists applied), so a variable-frame-rate video is
read at the times its frames were shown. Segments (the manifest's start_s, end_s; a word of a
long recording) are on that clock; only the frames around a segment are decoded (a video is
read as a stream from a seek just before it, arrays and HDF5 are sliced), so memory follows the
segment, not the file; neighbouring segments of one video are decoded together
(read_segments). A segment's video frames are those within a frame period of it, and where a
variable-rate video holds one frame across the segment's start or end, the frame before or
after it too. The 26 model frames are sampled evenly in time, from start_s to end_s
for a segment and from the first to the last frame for a whole recording, by linear
interpolation between the neighbouring frames; intensities are normalized over the frames read.
A segment may end up to one frame period after the last frame (where that frame ends). DICOM
cine series are whole utterances and take no segment.

A frames folder is recognized by its image files (at least half of its files); other files in
it (notes, desktop.ini) are ignored and named in the CineInfo, so check_data lists them once.
A frame rate stored as a number or as a 0-d or one-element array is read alike.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator

import numpy as np

from cmri2spec_tf.data import dicom
from cmri2spec_tf.data.manifest import split_hdf5
from cmri2spec_tf.data.problems import DataError, not_found

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ARRAY_EXTENSIONS = (".npy", ".npz")
HDF5_EXTENSIONS = (".h5", ".hdf5", ".hdf")
KINDS = ("dicom", "video", "frames", "array", "hdf5")
MAX_FRAME_RATE = 1000.0  # frames per second: above this a header or manifest is wrong
MAX_FRAMES = 200_000  # ~40 minutes at 83 fps: more is no speech recording
READ_SPAN_S = 10.0  # read_segments decodes at most this much of a video at once
LUMINANCE = np.array([0.299, 0.587, 0.114])


@dataclasses.dataclass(frozen=True)
class Frames:
  """Raw frames of a source before the model's grid: grey float [T, H, W], and what it was."""

  frames: np.ndarray
  kind: str
  frame_rate: float | None
  spacing_mm: tuple[float, float] | None = None
  ordered_by: str = "stored order"
  files: int = 1
  times: np.ndarray | None = None  # seconds of each frame read, on the recording's clock
  total_frames: int | None = None  # of the whole recording, when only a segment was read
  duration_s: float | None = None  # a video's length and first frame time, from its stream,
  start_s: float | None = None  # when only a segment was read
  ignored: tuple[str, ...] = ()  # files of a frames folder that are not frames


@dataclasses.dataclass(frozen=True)
class Window:
  """What a reader needs for a segment: the segment and the frame rate to place frames."""

  start_s: float
  end_s: float
  frame_rate: float | None

  def index_range(self, n_frames: int, rate: float) -> tuple[int, int]:
    """Frames [first, end) covering the segment with one neighbour on each side."""
    first = max(0, int(np.floor(self.start_s * rate)) - 1)
    return first, min(n_frames, int(np.ceil(self.end_s * rate)) + 2)


def frame_files(folder: str) -> tuple[list[str], list[str]]:
  """(image files, other files) of a folder, each sorted by name (hidden and OS files left out)."""
  files = dicom.list_series_files(folder)
  images = [f for f in files if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
  return images, [f for f in files if f not in set(images)]


def kind_of(entry: str) -> str:
  """Which source an existing manifest entry is (see the table above)."""
  path, _ = split_hdf5(entry)
  extension = os.path.splitext(path)[1].lower()
  if os.path.isdir(path):
    images, others = frame_files(path)
    return "frames" if images and len(images) >= len(others) else "dicom"
  for kind, extensions in (("video", VIDEO_EXTENSIONS), ("array", ARRAY_EXTENSIONS),
                           ("hdf5", HDF5_EXTENSIONS)):
    if extension in extensions:
      return kind
  return "dicom"


def read_mri(entry: str | os.PathLike, frame_rate: float | None = None,
             segment: tuple[float, float] | None = None) -> dicom.Cine:
  """Reads any source into the model's grid (float32 [26, 128, 128] in [0, 1]) with its info.
  `frame_rate`: the manifest's, when it has one (it wins over the file's). `segment`: (start_s,
  end_s) of a long recording."""
  entry = os.fspath(entry)
  if frame_rate is not None:
    check_frame_rate(entry, frame_rate)
  path, _ = split_hdf5(entry)
  if not os.path.exists(path):
    raise not_found(path, "MRI series")
  kind = kind_of(entry)
  if kind == "dicom":
    if segment is not None:
      raise DataError(entry, "a DICOM cine series is one utterance and takes no segment "
                      "(start_s/end_s are for video, frames, arrays and HDF5)")
    cine = dicom.read_cine(entry)
    return cine if frame_rate is None else dataclasses.replace(
        cine, info=dataclasses.replace(cine.info, frame_rate=frame_rate))
  window = Window(*segment, frame_rate) if segment is not None else None
  return _cine_of(READERS[kind](entry, window), entry, frame_rate, segment)


def read_segments(entry: str | os.PathLike, frame_rate: float | None,
                  segments: list[tuple[float, float]]) -> Iterator[np.ndarray]:
  """`read_mri(entry, frame_rate, segment).frames` for each segment of one long recording, in
  order: the same arrays. A video's frames are decoded once for neighbouring segments
  (read_video_segments, one seek per READ_SPAN_S of them instead of one per segment); the other
  sources are read per segment, a slice of a memory map, an HDF5 dataset or a few image files
  each, with nothing to share."""
  entry = os.fspath(entry)
  if len(segments) < 2 or not os.path.isfile(entry) or kind_of(entry) != "video":
    for segment in segments:
      yield read_mri(entry, frame_rate, segment).frames
    return
  if frame_rate is not None:
    check_frame_rate(entry, frame_rate)
  for group in _spans_of(segments, READ_SPAN_S):
    for raw, segment in zip(read_video_segments(entry, group), group):
      yield _cine_of(raw, entry, frame_rate, segment).frames


def _spans_of(segments: list[tuple[float, float]], most_s: float) -> list[list]:
  """Consecutive segments grouped so that each group spans at most `most_s` seconds (a longer
  segment alone)."""
  groups, low, high = [], 0.0, 0.0
  for start, end in segments:
    if groups and max(high, end) - min(low, start) <= most_s:
      groups[-1].append((start, end))
      low, high = min(low, start), max(high, end)
    else:
      groups.append([(start, end)])
      low, high = start, end
  return groups


def _cine_of(raw: Frames, entry: str, frame_rate: float | None,
             segment: tuple[float, float] | None) -> dicom.Cine:
  """`to_cine` at the manifest's frame rate, where it gives one, else the file's."""
  rate = frame_rate if frame_rate is not None else raw.frame_rate
  if rate is not None:
    check_frame_rate(entry, rate)
  return to_cine(dataclasses.replace(raw, frame_rate=rate), entry, segment)


def recording_span_of(entry: str, frame_rate: float | None = None) -> tuple[float | None,
                                                                           float | None]:
  """(first frame's time, duration) of a whole recording on its clock, decoding next to nothing:
  a video's container says them (decoded in full only where it does not), the other sources'
  frame count and rate."""
  if kind_of(entry) == "video":
    import av

    try:
      with av.open(entry) as container:
        if container.streams.video:
          start, duration = _stream_span(container, container.streams.video[0])
          if start is not None and duration is not None:
            return start, duration
    except (av.FFmpegError, OSError, ValueError) as e:
      raise DataError(entry, f"unreadable video ({type(e).__name__}: {e})") from e
    info = read_mri(entry).info
  else:
    info = read_mri(entry, frame_rate, (0.0, 1e-3)).info
  return info.start_s, info.duration_s


def to_cine(raw: Frames, entry: str, segment: tuple[float, float] | None = None) -> dicom.Cine:
  """The DICOM pipeline's geometry, normalization and time resampling for any source; for a
  segment, the 26 frames are sampled between its start and end."""
  frames = raw.frames
  if frames.shape[0] < 2:
    raise DataError(entry, f"an MRI recording needs at least 2 frames, found {frames.shape[0]}")
  if not np.all(np.isfinite(frames)):
    raise DataError(entry, "frames hold NaN or infinite values")
  total = raw.total_frames or frames.shape[0]
  times = frame_times(raw, frames.shape[0])
  start_s, duration_s = recording_span(raw, times, total)
  info = dicom.CineInfo(frames=total, rows=frames.shape[1], columns=frames.shape[2],
                        spacing_mm=raw.spacing_mm, ordered_by=raw.ordered_by, files=raw.files,
                        kind=raw.kind, frame_rate=raw.frame_rate, start_s=start_s,
                        duration_s=duration_s, ignored=raw.ignored)
  normalized = dicom.normalized_grid(frames, raw.spacing_mm, entry)
  span = segment if segment is not None else (times[0], times[-1])  # a whole one: by time
  return dicom.Cine(frames=resample_at(normalized, times, span, entry), info=info)


def frame_times(raw: Frames, n_frames: int) -> np.ndarray:
  """Seconds of each frame read: the source's own, else i / fps, else the index (no rate: a
  whole recording is then sampled evenly by frame, which is evenly by time at a fixed rate)."""
  if raw.times is not None:
    return np.asarray(raw.times, np.float64)
  return np.arange(n_frames, dtype=np.float64) / (raw.frame_rate or 1.0)


def recording_span(raw: Frames, times: np.ndarray, total: int) -> tuple[float | None,
                                                                        float | None]:
  """(first frame's time, the whole recording's duration, to the end of its last frame) on its
  clock; (None, None) where neither a frame rate nor timestamps place the frames."""
  if raw.kind == "video":
    if raw.total_frames is None:  # the whole video was read: its frames say it
      return float(times[0]), float(times[-1] - times[0]) + frame_period(times, None)
    return raw.start_s, raw.duration_s
  if raw.frame_rate is None:
    return None, None
  return 0.0, total / raw.frame_rate


def frame_period(times: np.ndarray, rate: float | None) -> float:
  """One frame's duration: 1 / fps, else the median step between the frames' times."""
  if rate:
    return 1.0 / rate
  return float(np.median(np.diff(times))) if len(times) > 1 else 0.0


def resample_at(frames: np.ndarray, times: np.ndarray, segment: tuple[float, float],
                entry: str) -> np.ndarray:
  """[26, h, w] sampled evenly over the segment, linear between the frames around each time.
  The segment may start half a frame before the first frame and end one frame period after the
  last (where it ends: the recording's duration)."""
  start, end = segment
  step = frame_period(times, None)
  if start < times[0] - step / 2 - 1e-9 or end > times[-1] + step + 1e-9:
    raise DataError(entry, f"segment {start:g}-{end:g} s lies outside the recording's frames "
                    f"({times[0]:.3f}-{times[-1] + step:.3f} s)")
  targets = np.clip(np.linspace(start, end, dicom.N_FRAMES), times[0], times[-1])
  lower = np.clip(np.searchsorted(times, targets, side="right") - 1, 0, len(times) - 2)
  weight = ((targets - times[lower]) / (times[lower + 1] - times[lower]))[:, None, None]
  return (frames[lower] * (1 - weight) + frames[lower + 1] * weight).astype(np.float32)


def _segment_of(entry: str, frames, rate: float | None, window: Window | None, kind: str,
                **fields) -> Frames:
  """Frames (all of them, or the window's slice with their times) of an indexable stack."""
  what = fields.pop("what", "frames")
  if window is None:  # x[()] reads an HDF5 dataset, a memory map or an array alike
    return Frames(grey(frames[()], entry, what), kind, rate, **fields)
  rate = window.frame_rate or rate
  if rate is None:
    raise DataError(entry, "a segment needs the frame rate (the manifest's frame_rate column, "
                    "or predict's --frame_rate)")
  check_frame_rate(entry, rate)
  first, end = window.index_range(frames.shape[0], rate)
  if end - first < 2:
    raise DataError(entry, f"segment {window.start_s:g}-{window.end_s:g} s lies outside the "
                    f"recording's {frames.shape[0]} frames at {rate:g} fps")
  return Frames(grey(np.asarray(frames[first:end]), entry, what), kind, rate,
                times=np.arange(first, end) / rate, total_frames=frames.shape[0], **fields)


def stored_rate(value, entry: str) -> float:
  """A frame rate as a file stores it: a number, or a 0-d or one-element array (an .npz member
  `fps=[50.0]`, an HDF5 attribute `frame_rate=[50.0]`)."""
  array = np.asarray(value)
  item = array.reshape(-1)[0] if array.size == 1 else None
  if isinstance(item, (bytes, np.bytes_)):
    item = item.decode(errors="replace")
  try:  # a number, or its text ("50", as some tools write attributes)
    rate = float(item) if item is not None and not np.iscomplexobj(array) else None
  except (TypeError, ValueError):
    rate = None
  if rate is None:
    raise DataError(entry, f"frame rate {value!r} is not one real number")
  check_frame_rate(entry, rate)
  return rate


def check_frame_rate(entry: str, rate: float) -> None:
  if not (isinstance(rate, (int, float)) and np.isfinite(rate) and 0 < rate <= MAX_FRAME_RATE):
    raise DataError(entry, f"frame rate {rate} is not plausible (0 < fps <= {MAX_FRAME_RATE:g})")


def grey(pixels: np.ndarray, entry: str, what: str = "frames") -> np.ndarray:
  """[T, H, W] or [T, H, W, 1|3|4] -> float64 [T, H, W] (colour -> BT.601 luminance)."""
  pixels = np.asarray(pixels)
  _check_rank(pixels, entry, what)
  if pixels.ndim == 4 and pixels.shape[-1] in (3, 4):
    return pixels[..., :3].astype(np.float64) @ LUMINANCE
  if pixels.ndim == 4:
    pixels = pixels[..., 0]
  if not np.issubdtype(pixels.dtype, np.number) or np.issubdtype(pixels.dtype, np.complexfloating):
    raise DataError(entry, f"{what} of type {pixels.dtype}: expected real numbers")
  if pixels.shape[0] > MAX_FRAMES or min(pixels.shape[1:]) < 2 or \
      pixels.shape[1] * pixels.shape[2] > dicom.MAX_PIXELS_PER_FRAME:
    raise DataError(entry, f"implausible {what} shape {pixels.shape}")
  return pixels.astype(np.float64)


# ------------------------------------------------------------------ the readers
def read_video(entry: str, window: Window | None = None) -> Frames:
  """The first video stream's frames, decoded one at a time (PyAV): all of them, or for a
  segment only those around it, from a seek to just before it."""
  return _read_video_windows(entry, window, [window])[0]


def read_video_segments(entry: str, segments: list[tuple[float, float]]) -> list[Frames]:
  """`read_video(entry, Window(start, end, None))` for each segment of one video, decoded once
  from one seek before the first (a seek and a second of decoding per segment otherwise): the
  same frames and times, each segment's picked from the span as its own read picks them."""
  windows = [Window(start, end, None) for start, end in segments]
  span = Window(min(w.start_s for w in windows), max(w.end_s for w in windows), None)
  return _read_video_windows(entry, span, windows)


def _read_video_windows(entry: str, span: Window | None, windows: list) -> list[Frames]:
  """Decodes `span` (None: the whole video) once and gives each window's Frames (None: all)."""
  import av  # local: only video needs FFmpeg

  try:
    with av.open(entry) as container:
      if not container.streams.video:
        raise DataError(entry, "no video stream in this file")
      stream = container.streams.video[0]
      rate = float(stream.average_rate) if stream.average_rate else None
      declared = stream.frames  # 0 where the container does not say
      start_s, duration_s = _stream_span(container, stream)
      frames, times = _decode(container, stream, span, rate)
  except DataError:
    raise
  except (av.FFmpegError, OSError, ValueError) as e:
    raise DataError(entry, f"unreadable video ({type(e).__name__}: {e})") from e
  read = []
  for window in windows:
    kept = _within(times, window, rate)
    if not kept:
      raise DataError(entry, "the video stream holds no decodable frame" if window is None else
                      f"segment {window.start_s:g}-{window.end_s:g} s lies outside the video")
    if window is None and declared and len(kept) < declared:
      raise DataError(entry, f"truncated video: {len(kept)} of the {declared} frames its "
                      "header declares could be decoded")
    read.append(Frames(np.stack([frames[i] for i in kept]), "video", rate,
                       ordered_by="stream time",
                       times=on_frame_grid(np.asarray([times[i] for i in kept], np.float64),
                                           rate, start_s),
                       total_frames=declared or None if window is not None else None,
                       start_s=start_s, duration_s=duration_s))
  return read


def on_frame_grid(times: np.ndarray, rate: float | None, start_s: float | None) -> np.ndarray:
  """A constant-rate video's timestamps, rounded by its container (Matroska keeps milliseconds),
  put back on their grid start + k / fps when every one lies within a quarter frame of it; a
  variable-rate video's, which do not, as they are."""
  if not rate:
    return times
  anchor = start_s or 0.0
  steps = (times - anchor) * rate
  if np.all(np.abs(steps - np.round(steps)) < 0.25):
    return anchor + np.round(steps) / rate
  return times


def _stream_span(container, stream) -> tuple[float | None, float | None]:
  """(start, duration) in seconds of a stream as its container declares them (None where it
  does not): what a segment read, which decodes only part of the video, knows of the whole."""
  start = float(stream.start_time * stream.time_base) if stream.start_time is not None \
      and stream.time_base else None
  if stream.duration and stream.time_base:
    return start, float(stream.duration * stream.time_base)
  if container.duration:
    return start, container.duration / 1e6 - (start or 0.0)
  return start, None


def _decode(container, stream, window: Window | None, rate: float | None):
  """(grey float32 frames, their times in s, in stream order): all, or for a window, from a seek
  to a keyframe at least a second before it, those within a frame of it and the nearest frame
  on each side beyond that (`_within` picks what a read keeps)."""
  frames, times, before = [], [], None
  if window is not None and stream.time_base:
    container.seek(max(0, int((window.start_s - 1.0) / stream.time_base)), stream=stream,
                   backward=True)
  for frame in container.decode(stream):
    time = float(frame.time) if frame.time is not None else len(frames) / (rate or 1.0)
    if window is not None and time < window.start_s - _margin(rate):
      before = (frame, time)  # the last frame before the window, converted only if kept
      continue
    for kept, kept_time in ([before] if before else []) + [(frame, time)]:
      frames.append((kept.to_ndarray(format="rgb24") @ LUMINANCE).astype(np.float32))
      times.append(kept_time)
    before = None
    if window is not None and time > window.end_s + _margin(rate):
      break
  return frames, times  # a `before` left over: the window lies after the last frame, none kept


def _margin(rate: float | None) -> float:
  """How far around a segment a video's frames are read: one frame period (0.1 s without a
  rate)."""
  return 1.0 / rate if rate else 0.1


def _within(times: list[float], window: Window | None, rate: float | None) -> list[int]:
  """Indices of the decoded frames (stream order) a read of `window` keeps: from the first frame
  at or after start - margin up to the first frame past end + margin, not included. Where a
  variable-rate video shows one frame across the window's start or end (a freeze longer than a
  frame), the frame shown before it, or the next one after it, too: the frames around every
  time of the window (a constant-rate video never needs them)."""
  if window is None:
    return list(range(len(times)))
  low, high = window.start_s - _margin(rate), window.end_s + _margin(rate)
  before, kept, after = None, [], None
  for i, time in enumerate(times):
    if time > high:
      after = i
      break
    if time < low:
      before = i
    else:
      kept.append(i)
  if not kept and (before is None or after is None):
    return []  # the window lies before the first frame or after the last
  if before is not None and (not kept or times[kept[0]] - _margin(rate) > window.start_s):
    kept.insert(0, before)
  if after is not None and (len(kept) < 2 or times[kept[-1]] + _margin(rate) < window.end_s):
    kept.append(after)
  return kept


def natural_key(name: str):
  """"frame10.png" after "frame2.png": digit runs compare as numbers."""
  return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def read_frames_folder(entry: str, window: Window | None = None) -> Frames:
  """Image files of a folder in natural order (for a segment, only those around it); all of
  one size."""
  from PIL import Image, UnidentifiedImageError

  files, others = frame_files(entry)
  files = sorted(files, key=lambda f: natural_key(os.path.basename(f)))
  ignored = tuple(os.path.basename(f) for f in others)
  total, first = len(files), 0
  if window is not None:
    if window.frame_rate is None:
      raise DataError(entry, "a segment of image frames needs the frame rate (the manifest's "
                      "frame_rate column, or predict's --frame_rate)")
    first, end = window.index_range(total, window.frame_rate)
    files = files[first:end]
  images, size = [], None
  for file in files:
    try:
      with Image.open(file) as image:
        if image.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F", "RGB", "RGBA"):
          image = image.convert("RGB")  # palette, CMYK, LA, ...: through colour
        pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError) as e:
      raise DataError(file, f"unreadable image ({type(e).__name__}: {e})") from e
    if size is not None and pixels.shape[:2] != size:
      raise DataError(file, f"frame size {pixels.shape[1]}x{pixels.shape[0]} differs from the "
                      f"first frame's {size[1]}x{size[0]} in this folder")
    size = pixels.shape[:2]
    images.append(pixels[..., :3] @ LUMINANCE if pixels.ndim == 3 else pixels)
  if window is not None and len(images) < 2:
    raise DataError(entry, f"segment {window.start_s:g}-{window.end_s:g} s lies outside the "
                    f"{total} frames at {window.frame_rate:g} fps")
  times = None if window is None else np.arange(first, first + len(images)) / window.frame_rate
  return Frames(grey(np.stack(images), entry), "frames", None, ordered_by="file names",
                files=total, times=times, total_frames=total if window else None,
                ignored=ignored)


def read_array(entry: str, window: Window | None = None) -> Frames:
  """A .npy array (memory-mapped: a segment reads only its frames), or the one array (or
  `frames`) of a .npz with an optional frame rate."""
  try:
    stored = np.load(entry, mmap_mode="r", allow_pickle=False)
    if not isinstance(stored, np.lib.npyio.NpzFile):
      _check_rank(stored, entry, "array")
      return _segment_of(entry, stored, None, window, "array", what="array")
    with stored:
      names = [n for n in stored.files if n not in ("frame_rate", "fps")]
      name = "frames" if "frames" in names else names[0] if len(names) == 1 else None
      if name is None:
        raise DataError(entry, f"holds arrays {', '.join(names) or 'none'}: name the frames "
                        "'frames'")
      rate = next((stored_rate(stored[k], entry) for k in ("frame_rate", "fps")
                   if k in stored.files), None)
      frames = stored[name]
      _check_rank(frames, entry, "array")
      return _segment_of(entry, frames, rate, window, "array", what="array")
  except DataError:
    raise
  except (OSError, ValueError, EOFError) as e:
    raise DataError(entry, f"unreadable array file ({type(e).__name__}: {e})") from e


def read_hdf5(entry: str, window: Window | None = None) -> Frames:
  """A 3-D dataset of an HDF5 file: the one named after ':' or the file's only one (for a
  segment, only its frames are read)."""
  import h5py

  path, name = split_hdf5(entry)
  try:
    with h5py.File(path, "r") as f:
      if name is None:
        candidates = []
        f.visititems(lambda n, o: candidates.append(n)
                     if isinstance(o, h5py.Dataset) and o.ndim >= 3 else None)
        if len(candidates) != 1:
          raise DataError(path, f"holds {len(candidates)} datasets of 3 or more dimensions "
                          f"({', '.join(candidates[:5]) or 'none'}): name one as "
                          f"{os.path.basename(path)}:/NAME in the manifest")
        name = candidates[0]
      if name not in f or not isinstance(f[name], h5py.Dataset):
        raise DataError(entry, f"no dataset {name} in this HDF5 file")
      dataset = f[name]
      rate = next((stored_rate(dataset.attrs[k], entry) for k in ("frame_rate", "fps")
                   if k in dataset.attrs), None)
      _check_rank(dataset, entry, "dataset")
      return _segment_of(entry, dataset, rate, window, "hdf5", what="dataset")
  except DataError:
    raise
  except (OSError, ValueError, TypeError) as e:
    raise DataError(entry, f"unreadable HDF5 file ({type(e).__name__}: {e})") from e


def _check_rank(frames, entry: str, what: str) -> None:
  """The shape check of `grey`, before anything is read (a memory map or an HDF5 dataset)."""
  shape = frames.shape
  if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3, 4))):
    raise DataError(entry, f"{what} of shape {tuple(shape)}: expected [frames, rows, columns] "
                    "(or with a last axis of 1, 3 or 4 channels)")


READERS = {"video": read_video, "frames": read_frames_folder, "array": read_array,
           "hdf5": read_hdf5}
