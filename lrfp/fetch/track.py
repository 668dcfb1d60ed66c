"""Link face boxes across sampled frames into tracks (IoU), and keep a few crops per track spaced in time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Box = tuple[int, int, int, int]  # x, y, w, h


def iou(a: Box, b: Box) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = min(ax1, bx1) - max(a[0], b[0])
    ih = min(ay1, by1) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _near(a: Box, b: Box) -> float:
    """A weaker link for fast movers: centres within half a face side and sizes within 1.5x. 0..1, 0 = no link."""
    sa, sb = max(a[2], a[3]), max(b[2], b[3])
    if max(sa, sb) > 1.5 * min(sa, sb):
        return 0.0
    side = (sa + sb) / 2
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    d = (dx * dx + dy * dy) ** 0.5 / side
    return max(0.0, 1.0 - d / 0.5) if d < 0.5 else 0.0


@dataclass
class Candidate:
    """One detection of a track, with whatever the caller needs to store it later (payload)."""

    time_s: float
    frame_index: int
    box: Box
    score: float
    payload: Any = None


@dataclass
class Track:
    number: int  # 1, 2, ... in order of appearance within one video
    last_box: Box
    last_sample: int
    seen: int = 0  # detections linked to this track, including thinned-out ones
    candidates: list[Candidate] = field(default_factory=list)


@dataclass(frozen=True)
class FinishedTrack:
    number: int
    seen: int
    first_s: float
    last_s: float
    kept: list[Candidate]


def spaced_in_time(cands: list[Candidate], k: int) -> list[Candidate]:
    """At most k candidates spread evenly over the track's time span (best score breaks ties)."""
    if len(cands) <= k:
        return list(cands)
    t0, t1 = cands[0].time_s, cands[-1].time_s
    targets = [t0 + (t1 - t0) * i / (k - 1) for i in range(k)] if k > 1 else [(t0 + t1) / 2]
    chosen: list[int] = []
    for t in targets:
        best = min(
            (i for i in range(len(cands)) if i not in chosen),
            key=lambda i: (abs(cands[i].time_s - t), -cands[i].score),
        )
        chosen.append(best)
    return [cands[i] for i in sorted(chosen)]


class IoUTracker:
    """Greedy IoU tracker over sampled frames.

    A box joins the track whose last box overlaps it most (IoU >= iou_min, or, failing that, a nearby
    box of similar size); a track not seen for more than `max_gap` samples ends. Each track keeps at most
    `per_track` candidates spaced in time; to bound memory on long tracks, candidates are thinned to
    2 x per_track whenever they exceed 4 x per_track.
    """

    def __init__(self, per_track: int = 3, iou_min: float = 0.3, max_gap: int = 2) -> None:
        if per_track < 1:
            raise ValueError("per_track must be at least 1")
        self.per_track = per_track
        self.iou_min = iou_min
        self.max_gap = max_gap
        self.active: list[Track] = []
        self._next = 1

    def update(self, sample: int, detections: list[Candidate]) -> list[FinishedTrack]:
        """Add the detections of sample number `sample`; returns the tracks that ended before it."""
        finished = [self._finish(t) for t in self.active if sample - t.last_sample - 1 > self.max_gap]
        self.active = [t for t in self.active if sample - t.last_sample - 1 <= self.max_gap]
        pairs = []
        for ti, t in enumerate(self.active):
            for di, d in enumerate(detections):
                o = iou(t.last_box, d.box)
                score = 1.0 + o if o >= self.iou_min else _near(t.last_box, d.box)
                if score > 0:
                    pairs.append((score, ti, di))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            self._extend(self.active[ti], sample, detections[di])
        for di, d in enumerate(detections):
            if di not in used_d:
                t = Track(self._next, d.box, sample)
                self._next += 1
                self._extend(t, sample, d)
                self.active.append(t)
        return finished

    def finish(self) -> list[FinishedTrack]:
        """End every active track (end of the video)."""
        done = [self._finish(t) for t in self.active]
        self.active = []
        return done

    def pending(self) -> list[Candidate]:
        return [c for t in self.active for c in t.candidates]

    def _extend(self, t: Track, sample: int, c: Candidate) -> None:
        t.last_box, t.last_sample = c.box, sample
        t.seen += 1
        t.candidates.append(c)
        if len(t.candidates) > 4 * self.per_track:
            t.candidates = spaced_in_time(t.candidates, 2 * self.per_track)

    def _finish(self, t: Track) -> FinishedTrack:
        return FinishedTrack(
            t.number, t.seen, t.candidates[0].time_s, t.candidates[-1].time_s,
            spaced_in_time(t.candidates, self.per_track),
        )
