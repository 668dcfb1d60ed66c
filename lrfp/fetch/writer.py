"""The crop writer: a thread with its own store connection that encodes and stores the kept crops of
finished face tracks in batches (one filesystem sync and one commit per batch), overlapping the frame loop."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path
from typing import Any

from lrfp.fetch.config import FetchConfig
from lrfp.fetch.frames import VideoInfo
from lrfp.fetch.detect import ResolvedDetector
from lrfp.fetch.results import VideoResult
from lrfp.store import CropOrigin, Store, open_store

CONTEXT_WIDTH = 480  # the context JPEG saved for each frame that yields a crop is at most this wide
WRITER_BATCH_S = 1.0  # the writer stores what finished within this long in one batch (one sync, one commit)
WRITER_BATCH_TRACKS = 64


class CropWriter:
    """Stores the kept crops of finished tracks, with their frame's context JPEG, from a thread of its own."""

    def __init__(self, data_dir: Path, source_id: int, name: str, info: VideoInfo, cfg: FetchConfig,
                 model: ResolvedDetector, res: VideoResult) -> None:
        self.data_dir, self.source_id, self.name, self.info, self.cfg, self.model, self.res = (
            data_dir, source_id, name, info, cfg, model, res)
        self.frames_stored: set[int] = set()  # frame indexes whose row (and context JPEG) is stored
        self.crop_ids: set[int] = set()  # ids of the crops stored (or found identical) so far
        self.queue: queue.Queue = queue.Queue(maxsize=256)  # bounded: the frame loop waits if storing lags
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"lrfp-writer-{name}", daemon=True)
        self.thread.start()

    def put(self, track: Any, context: dict[int, Any]) -> None:
        if self.error is not None:
            raise self.error
        self.res.tracks += 1
        images = {c.frame_index: context.get(c.frame_index) for c in track.kept}
        self.queue.put((track, images))

    def close(self) -> None:
        """Ends the thread after what was put is stored. Raises the writer's error, if it had one."""
        self.queue.put(None)  # never blocks for long: the thread takes items until it sees the end marker
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        closing = False
        try:
            with open_store(self.data_dir) as store:
                while not closing:
                    # Wait for one track, then gather more for up to WRITER_BATCH_S (or until the end): each
                    # batch costs one filesystem sync and one commit. A kill loses at most the open batch,
                    # which the rerun redoes.
                    batch = [self.queue.get()]
                    deadline = time.monotonic() + WRITER_BATCH_S
                    with contextlib.suppress(queue.Empty):
                        while batch[-1] is not None and len(batch) < WRITER_BATCH_TRACKS:
                            batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                    if batch[-1] is None:
                        closing = True
                        batch.pop()
                    if batch:
                        self._write(store, batch)
        except BaseException as e:  # handed to the frame loop by put()/close()
            self.error = e
            # Take what is still put until the end marker, so that put() and close() return; if the failed
            # batch held the marker already, close() is joining and nothing more comes.
            while not closing:
                closing = self.queue.get() is None

    def _write(self, store: Store, batch: list[tuple[Any, dict[int, Any]]]) -> None:
        """Encode and store the kept crops of a batch of finished tracks, with one sync and one commit."""
        from lrfp.fetch.crop import encode_context_jpeg, encode_png
        from lrfp.store import NewCrop, NewFrame

        frames: dict[int, NewFrame] = {}
        crops: list[NewCrop] = []
        for track, images in batch:
            for c in track.kept:
                square, pixels = c.payload
                if c.frame_index not in self.frames_stored and c.frame_index not in frames:
                    small = images.get(c.frame_index)
                    jpeg = encode_context_jpeg(small, CONTEXT_WIDTH) if small is not None else None
                    frames[c.frame_index] = NewFrame(c.frame_index, c.time_s, self.info.width, self.info.height, jpeg)
                meta: dict[str, Any] = {
                    "crop_box": list(square), "margin": self.cfg.margin, "frame_size": [self.info.width, self.info.height],
                    "track_seen": track.seen, "track_span_s": [track.first_s, track.last_s],
                    "tiles": str(self.model.settings.tiles),
                }
                if self.info.downscaled:
                    meta["downscaled_from"] = [self.info.native_width, self.info.native_height]
                origin = CropOrigin(
                    frame_index=c.frame_index, time_s=c.time_s, box=tuple(c.box), score=round(c.score, 4),
                    detector=self.model.name, model_sha256=self.model.weights_sha256,
                    track_id=f"{self.name}:t{track.number}", meta=meta,
                )
                crops.append(NewCrop(encode_png(pixels), square[2], square[3], origin))
        results = store.add_frames_and_crops(self.source_id, list(frames.values()), crops)
        self.frames_stored.update(frames)
        self.crop_ids.update(crop_id for crop_id, _ in results)
        self.res.crops_kept += len(results)
        self.res.crops_new += sum(created for _, created in results)
