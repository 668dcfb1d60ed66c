"""A labeling session: which crops to show, in what order, and every key's label committed to the store.

No Textual here: the screens call `LabelSession` and draw what it returns, so the rules of what is
shown and what is written are tested without a terminal.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrfp import LABELS, SKIPPED, UNUSABLE
from lrfp.errors import NotFoundError, UsageError
from lrfp.face_size import face_px
from lrfp.store import IN_LIST_CHUNK, Store

log = logging.getLogger(__name__)

LABEL_VALUES = (*LABELS, UNUSABLE, SKIPPED)
"""Every value a key can write."""
DECIDED = (*LABELS, UNUSABLE)
"""Labels that settle a crop (a skip asks again later)."""
ONLY_CHOICES = ("unlabeled", "skipped", "all")
ORDER_CHOICES = ("time", "uncertain", "confident")
"""time: by source and time (default); uncertain / confident: by the model's probability of its predicted class."""
QUEUE_CHOICES = ("suspects",)
"""suspects: the crops the latest `lrfp review-labels` run flagged, most likely wrong first."""


def default_annotator() -> str:
    """The OS user name, or "unknown" where there is none."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


@dataclass(frozen=True)
class LabelConfig:
    """What `lrfp label` shows and who labels. `only=None` means "unlabeled" unless `label` is given."""

    annotator: str = field(default_factory=default_annotator)
    only: str | None = None
    label: str | None = None
    source: str | None = None
    shuffle: bool = False
    seed: int = 0
    review: bool = False
    sample: float | None = None
    order: str = "time"
    queue: str | None = None
    suggestions: bool = True  # show model suggestions (never in blind --review)

    def check(self) -> None:
        """Raise UsageError for option combinations that cannot mean anything, naming the fix (called by LabelSession)."""
        if not self.annotator or not self.annotator.strip():
            raise UsageError("--annotator must not be empty")
        if self.only is not None and self.only not in ONLY_CHOICES:
            raise UsageError(f"--only {self.only!r}: choose one of {', '.join(ONLY_CHOICES)}")
        if self.label is not None and self.label not in LABEL_VALUES:
            raise UsageError(f"--label {self.label!r}: choose one of {', '.join(LABEL_VALUES)}")
        if self.label is not None and self.only not in (None, "all"):
            raise UsageError(f"--label {self.label} and --only {self.only} contradict each other: use one of them")
        if self.review and self.label is not None:
            raise UsageError("--review is blind: it cannot be combined with --label")
        if self.sample is not None:
            if not self.review:
                raise UsageError("--sample only applies with --review")
            if not 0 < self.sample <= 1:
                raise UsageError(f"--sample {self.sample}: must be a fraction in (0, 1], e.g. 0.1")
        if self.order not in ORDER_CHOICES:
            raise UsageError(f"--order {self.order!r}: choose one of {', '.join(ORDER_CHOICES)}")
        if self.queue is not None and self.queue not in QUEUE_CHOICES:
            raise UsageError(f"--queue {self.queue!r}: choose one of {', '.join(QUEUE_CHOICES)}")
        if self.order != "time" and self.shuffle:
            raise UsageError(f"--order {self.order} and --shuffle contradict each other: use one of them")
        if self.review and (self.order != "time" or self.queue is not None):
            what = f"--order {self.order}" if self.order != "time" else f"--queue {self.queue}"
            raise UsageError(f"--review is blind: it cannot be combined with {what} (both come from a model)")
        if self.queue is not None and (self.only is not None or self.label is not None):
            other = f"--only {self.only}" if self.only is not None else f"--label {self.label}"
            raise UsageError(f"--queue {self.queue} and {other} contradict each other: use one of them")

    @property
    def kind(self) -> str:
        return "review" if self.review else "label"

    @property
    def selection(self) -> str:
        return self.only or ("all" if self.label else "unlabeled")


@dataclass(frozen=True)
class SessionSummary:
    """What a labeling session did: keys pressed this session (session_labels, by label in session_counts)
    and the state of its crops at the end (total, decided, counts by state incl. "unlabeled")."""

    annotator: str
    kind: str  # "label" or "review"
    session_labels: int
    session_suggested: int  # of them, labels taken from a model suggestion
    session_counts: dict[str, int]
    total: int
    decided: int
    counts: dict[str, int]


def in_review_sample(crop_id: int, fraction: float, seed: int) -> bool:
    """A stable pseudo-random draw per crop: the same crops stay in the sample across restarts."""
    if fraction >= 1:
        return True
    digest = hashlib.sha256(f"lrfp-review:{seed}:{crop_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass(frozen=True)
class LabelEvent:
    """One row of a crop's label history, as shown to the labeler."""

    label: str | None
    annotator: str
    kind: str
    created_at: str


@dataclass(frozen=True)
class Suggestion:
    """A label a model proposes for a crop: accepted with one key, recorded as `suggested` in the history."""

    label: str
    probability: float  # the model's probability of `label`, 0..1
    origin: str  # "model" (`lrfp predict`) or "review-labels" (an out-of-fold model that disagrees with the label)


@dataclass(frozen=True)
class CropInfo:
    """Everything the screens show about one crop."""

    id: int
    file: Path
    rel_path: str
    width: int
    height: int
    source: str
    time_s: float | None
    frame_index: int | None
    score: float | None
    box: tuple[int, int, int, int] | None
    frame_file: Path | None
    frame_size: tuple[int, int] | None  # the video frame's size, which the box refers to (the stored image may be smaller)
    face_px: int  # face size by the rule every command uses (store.face_px)
    original: str | None
    label: str | None
    """The label this session sees as the crop's state (own review label in review mode)."""
    history: tuple[LabelEvent, ...]
    suggestion: Suggestion | None = None


REMOVED = "removed"
"""Skipped.why: the crop is no longer in the store (another command removed it, e.g. `lrfp fetch --redo`)."""
CHANGED = "changed"
"""Skipped.why: another session labeled the crop after this one showed it; its label is kept, not overwritten."""


@dataclass(frozen=True)
class Skipped:
    """A crop an action left alone instead of writing (see REMOVED, CHANGED); `label` and `annotator` are the
    other session's (CHANGED); `undo`: it was an undo that was not done."""

    crop_id: int
    why: str
    label: str | None = None
    annotator: str | None = None
    undo: bool = False


def skipped_message(skipped: list[Skipped]) -> str | None:
    """One line saying what an action skipped and why (None when it skipped nothing)."""
    if not skipped:
        return None
    if len(skipped) == 1:
        k = skipped[0]
        if k.why == REMOVED:
            return (f"crop {k.crop_id} is no longer in the store (another command removed it, e.g. "
                    "`lrfp fetch --redo`): skipped")
        what = "cleared" if k.label is None else f"labeled {k.label}"
        if k.undo:
            return f"crop {k.crop_id} was {what} by {k.annotator} in another session since: not undone, it stays"
        return (f"crop {k.crop_id} was {what} by {k.annotator} in another session after it was shown here: "
                "kept, not overwritten")
    removed = sum(k.why == REMOVED for k in skipped)
    changed = len(skipped) - removed
    parts = ([f"{removed} no longer in the store"] if removed else []) + (
        [f"{changed} labeled in another session meanwhile (kept)"] if changed else [])
    return f"{len(skipped)} crops {'not undone' if skipped[0].undo else 'skipped'}: {', '.join(parts)}"


@dataclass
class UndoEntry:
    crop_id: int
    previous: str | None
    position: int
    previous_suggested: bool = False  # the restored label was an accepted suggestion (undo keeps the flag)


@dataclass
class Progress:
    """The progress line: decided / total, per-class counts, labels per minute in this session."""

    total: int
    counts: Counter
    session_labels: int
    started: float

    @property
    def decided(self) -> int:
        return sum(self.counts[k] for k in DECIDED)

    def per_minute(self, now: float | None = None) -> float:
        elapsed = (now if now is not None else time.monotonic()) - self.started
        return self.session_labels / (elapsed / 60) if elapsed > 0 else 0.0


class LabelSession:
    """The crops to show for a LabelConfig, a position in them, and labeling that commits at once."""

    def __init__(self, store: Store, cfg: LabelConfig) -> None:
        cfg.check()
        self.store = store
        self.cfg = cfg
        self.source_id: int | None = None
        if cfg.source is not None:
            row = store.find_source(cfg.source)
            if row is None:
                known = ", ".join(r["name"] for r in store.sources()) or "none"
                raise NotFoundError(f"no source named {cfg.source!r} in the store (known: {known})")
            self.source_id = int(row["id"])
        self._suspects_run: Any = None
        self._reopened: set[int] = set()  # suspects whose label this session undid: they wait again
        self._suggestions: dict[int, Suggestion] = {}
        self._gone: set[int] = set()  # crops another command removed while this session ran
        # Concurrent sessions: the id of the event behind each crop's state when this session showed it, and the
        # events this session wrote. A key on a crop whose state another session changed since is not written.
        self._watermark = self._latest_event_id()  # for crops not shown yet: any later event is another's
        self._seen: dict[int, int | None] = {}
        self._mine: set[int] = set()
        self.skipped: list[Skipped] = []
        """What the last action left alone (removed crops, crops another session labeled meanwhile)."""
        self.ids: list[int] = self._queue()
        self.position = 0
        self._undo: list[list[UndoEntry]] = []  # one list per action: a key labels one crop, grid `a` or `y` a page
        self._before: dict[int, str | None] = {}  # each crop's state before this session first labeled it
        self._now: dict[int, str | None] = {}  # each touched crop's state after this session's last action
        self._now_suggested: dict[int, bool] = {}  # whether that state is an accepted suggestion
        self.started = time.monotonic()
        self._total, self._counts = self._count()
        # Resume: the first crop still waiting (for --only unlabeled, the first unlabeled one).
        self.position = self._next_matching(0)

    # -- the queue -------------------------------------------------------------------------------

    # The queue, state and count queries below are the one place raw SQL (`Store.query`) stays outside
    # store.py: they share `_state_sql`, whose meaning depends on this session (a reviewer sees only their
    # own review events, a labeler the current label), so a named store read would take the session along.

    def _state_sql(self) -> str:
        """SQL for a crop's state as this session sees it (column `state`, for crop alias c)."""
        if self.cfg.review:
            return (
                "(SELECT label FROM labels r WHERE r.crop_id = c.id AND r.kind = 'review' AND r.annotator = :me "
                "ORDER BY r.id DESC LIMIT 1)"
            )
        return "(SELECT label FROM current_labels cl WHERE cl.crop_id = c.id)"

    def _scope_rows(self) -> list[Any]:
        """(id, state) of every crop this session's options select (not the suspects queue), in source/time order."""
        cfg = self.cfg
        where, args = ["1 = 1"], {"me": cfg.annotator}
        if self.source_id is not None:
            where.append("c.source_id = :source")
            args["source"] = self.source_id
        if cfg.review:
            # Crops someone else has decided; the reviewer never sees what they chose.
            where.append(
                "cur.label IN ('with_mask', 'without_mask', 'unusable') AND cur.annotator != :me"
            )
        sql = f"""SELECT c.id, {self._state_sql()} AS state FROM crops c
                  LEFT JOIN current_labels cur ON cur.crop_id = c.id
                  WHERE {' AND '.join(where)}
                  ORDER BY c.source_id, c.time_s IS NULL, c.time_s, c.frame_index, c.id"""
        rows = self.store.query(sql, args)
        if cfg.review:
            rows = [r for r in rows if in_review_sample(r["id"], cfg.sample or 1.0, cfg.seed)]
        return rows

    def _queue(self) -> list[int]:
        if self.cfg.queue == "suspects":
            return self._suspects_queue()
        cfg = self.cfg
        rows = self._scope_rows()
        self._scope = [int(r["id"]) for r in rows]
        ids = [int(r["id"]) for r in rows if self._matches(r["state"])]
        if cfg.shuffle:
            random.Random(cfg.seed).shuffle(ids)
        if (cfg.suggestions and not cfg.review) or cfg.order != "time":
            self._load_predictions(ids)
        if cfg.order != "time":
            ids = self._by_confidence(ids)
        return ids

    def _load_predictions(self, ids: list[int]) -> None:
        """The latest `lrfp predict` prediction of each crop in the queue, as suggestions (classes only)."""
        for crop_id, p in self.store.latest_predictions(ids).items():
            if p.predicted in LABELS:
                self._suggestions[crop_id] = Suggestion(p.predicted, float(p.confidence), "model")

    def _by_confidence(self, ids: list[int]) -> list[int]:
        """ids by the model's confidence (uncertain: lowest first; confident: highest first); crops without a
        prediction keep their order after the others. Raises UsageError when no crop here has one."""
        if not self._suggestions:
            has_any = self.store.count_predicted_crops() > 0
            why = ("none of the crops in this queue has a prediction" if has_any
                   else "the store has no model predictions")
            raise UsageError(
                f"--order {self.cfg.order} needs model predictions, but {why}: run "
                "`lrfp predict --checkpoint PATH` (a checkpoint written by `lrfp bench`; it predicts the unlabeled "
                "crops) first, or drop --order"
            )
        sign = 1 if self.cfg.order == "uncertain" else -1
        with_p = [i for i in ids if i in self._suggestions]
        with_p.sort(key=lambda i: sign * self._suggestions[i].probability)  # stable: ties keep source/time order
        return with_p + [i for i in ids if i not in self._suggestions]

    def _suspects_queue(self) -> list[int]:
        """The latest review-labels run's flagged crops, in rank order; each with the out-of-fold model's label
        as its suggestion. Raises UsageError when no run is stored."""
        run = self.store.latest_label_issues_run()
        if run is None:
            raise UsageError("--queue suspects: the store has no label-error ranking yet: run `lrfp review-labels` first")
        self._suspects_run = run
        rows = self.store.label_issues(run["run_id"], only_issues=True)
        if self.source_id is not None:
            keep = {crop_id for crop_id, _ in self.store.crop_paths(source_id=self.source_id)}
            rows = [r for r in rows if r["crop_id"] in keep]
        for r in rows:
            if r["suggested_label"] != r["given_label"]:
                self._suggestions[int(r["crop_id"])] = Suggestion(r["suggested_label"], float(r["p_suggested"]),
                                                                  "review-labels")
        self._scope = [int(r["crop_id"]) for r in rows]
        return [i for i in self._scope if self._waiting(i)]

    def _latest_event_id(self) -> int:
        row = self.store.query("SELECT COALESCE(MAX(id), 0) AS n FROM labels")
        return int(row[0]["n"])

    def exists(self, crop_id: int) -> bool:
        """Whether the crop is still in the store (another command, e.g. `lrfp fetch --redo`, may remove crops
        this session loaded); a removed crop is remembered and never shown again."""
        if crop_id in self._gone:
            return False
        if self.store.query("SELECT 1 FROM crops WHERE id = ?", (crop_id,)):
            return True
        self._gone.add(crop_id)
        self.refresh_counts()
        return False

    def _state_event(self, crop_id: int):  # noqa: ANN202 - a sqlite3.Row or None
        """The event behind the crop's state as this session sees it (id, label, annotator, suggested), or None."""
        if self.cfg.review:
            sql = ("SELECT id, label, annotator, suggested FROM labels WHERE crop_id = :id AND kind = 'review' "
                   "AND annotator = :me ORDER BY id DESC LIMIT 1")
        else:
            sql = ("SELECT id, label, annotator, suggested FROM labels WHERE crop_id = :id AND kind != 'review' "
                   "ORDER BY id DESC LIMIT 1")
        rows = self.store.query(sql, {"id": crop_id, "me": self.cfg.annotator})
        return rows[0] if rows else None

    def _changed_meanwhile(self, crop_id: int, event) -> bool:  # noqa: ANN001 - a sqlite3.Row or None
        """Whether another session changed the crop's state after this one showed it (or, for a crop not shown,
        after this session started)."""
        if event is None or event["id"] in self._mine:
            return False
        if crop_id not in self._seen:
            return event["id"] > self._watermark
        return event["id"] != self._seen[crop_id]

    def _waiting(self, crop_id: int) -> bool:
        """Whether the crop still needs this session: it is still in the store and matches the selection (for
        suspects: nobody has labeled it since the review-labels run, not even to keep its label)."""
        if not self.exists(crop_id):
            return False
        if self._suspects_run is not None:
            if crop_id in self._reopened:
                return True
            return not self.store.labeled_since(crop_id, self._suspects_run["created_at"])
        return self._matches(self.state(crop_id))

    def suggestion(self, crop_id: int) -> Suggestion | None:
        """The model's suggestion for this crop, or None (no prediction, suggestions off, or blind review)."""
        if self.cfg.review or not self.cfg.suggestions:
            return None
        return self._suggestions.get(crop_id)

    @property
    def has_suggestions(self) -> bool:
        return bool(self._suggestions) and self.cfg.suggestions and not self.cfg.review

    def _matches(self, state: str | None) -> bool:
        sel = self.cfg.selection
        if self.cfg.label is not None:
            return state == self.cfg.label
        if sel == "unlabeled":
            return state is None
        if sel == "skipped":
            return state == SKIPPED
        return True

    def state(self, crop_id: int) -> str | None:
        """The crop's label as this session sees it, read now (another process may have labeled it)."""
        row = self.store.query(f"SELECT {self._state_sql()} AS state FROM crops c WHERE c.id = :id",
                               {"id": crop_id, "me": self.cfg.annotator})
        return row[0]["state"] if row else None

    def _next_matching(self, start: int) -> int:
        """The first position >= start whose crop still matches (len(ids) when none is left)."""
        pos = start
        while pos < len(self.ids) and not self._waiting(self.ids[pos]):
            pos += 1
        return pos

    # -- what to show ----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.position >= len(self.ids)

    @property
    def current_id(self) -> int | None:
        return None if self.done else self.ids[self.position]

    def empty_message(self) -> str | None:
        """Why there is nothing to show, or None when there is something."""
        if not self.done:
            return None
        waiting = self._next_matching(0)
        if waiting < len(self.ids):  # moved past the end with right/enter, but earlier crops still wait
            return f"End of the queue, but crop {self.ids[waiting]} and maybe others before it still wait: left goes back."
        if self.store.count_crops() == 0:
            return "The store has no crops yet: run `lrfp import` or `lrfp fetch` first."
        where = f" from source {self.cfg.source!r}" if self.cfg.source else ""
        if self._suspects_run is not None:
            run = self._suspects_run
            return (f"No suspects left{where}: review-labels run {run['run_id']} ({run['created_at'][:16]}) flagged "
                    f"{len(self._scope)} crops, and each has been labeled again since. Rerun `lrfp review-labels` "
                    "for a fresh ranking.")
        if self.cfg.review:
            return (f"Nothing to review{where}: no crop labeled by someone other than {self.cfg.annotator!r} "
                    "is left in the sample.")
        if self.cfg.label is not None:
            return f"No crop{where} is labeled {self.cfg.label!r}."
        sel = self.cfg.selection
        if sel == "skipped":
            return f"No skipped crops{where}: nothing to look at again."
        if sel == "unlabeled":
            skipped = self._counts[SKIPPED]
            hint = f" ({skipped} skipped: run `lrfp label --only skipped`)" if skipped else ""
            return f"Nothing left to label{where}: all {self._total} crops have a label{hint}."
        return f"No crops{where}."

    def current_info(self) -> CropInfo | None:
        """The crop on screen, moving past crops removed from the store meanwhile (noted in `skipped`);
        None when nothing is left to show."""
        while (crop_id := self.current_id) is not None:
            try:
                return self.info(crop_id)
            except NotFoundError:
                self.skipped.append(Skipped(crop_id, REMOVED))
                self.advance()
        return None

    def take_notice(self) -> str | None:
        """What the last action(s) skipped, in one line (see `skipped_message`); clears it."""
        message, self.skipped = skipped_message(self.skipped), []
        return message

    def crop_file(self, crop_id: int) -> tuple[Path, str]:
        """(absolute file, path relative to the store) of a crop's image, without marking it shown (to load it
        ahead). Raises NotFoundError when the crop is no longer in the store."""
        c = self.store.crop_in_context(crop_id)
        return self.store.crop_file(c["path"]), c["path"]

    def info(self, crop_id: int) -> CropInfo:
        """What the screens show of one crop; from now on a key on it is written only if no other session changes
        its label first. Raises NotFoundError when the crop is no longer in the store."""
        try:
            c = self.store.crop_in_context(crop_id)
        except NotFoundError:
            self._gone.add(crop_id)
            self.refresh_counts()
            raise
        event = self._state_event(crop_id)
        self._seen[crop_id] = event["id"] if event is not None else None
        history = []
        for e in self.store.label_history(crop_id):
            if self.cfg.review and not (e["kind"] == "review" and e["annotator"] == self.cfg.annotator):
                continue  # blind review: the reviewer sees only their own events
            history.append(LabelEvent(e["label"], e["annotator"], e["kind"], e["created_at"]))
        box = None
        if c["box_w"] is not None and c["box_h"] is not None:
            box = (int(c["box_x"]), int(c["box_y"]), int(c["box_w"]), int(c["box_h"]))
        return CropInfo(
            id=crop_id, file=self.store.crop_file(c["path"]), rel_path=c["path"], width=c["width"],
            height=c["height"], source=c["source_name"], time_s=c["time_s"], frame_index=c["frame_index"],
            score=c["score"], box=box, frame_file=self.store.root / c["frame_path"] if c["frame_path"] else None,
            frame_size=(c["frame_w"], c["frame_h"]) if c["frame_w"] and c["frame_h"] else None, face_px=face_px(c),
            original=c["original"], label=event["label"] if event is not None else None, history=tuple(history),
            suggestion=self.suggestion(crop_id),
        )

    def progress(self) -> Progress:
        return Progress(self._total, self._counts, self.session_labels, self.started)

    def _count(self) -> tuple[int, Counter]:
        if not self._scope:
            return 0, Counter()
        states: Counter = Counter()
        # Chunked IN lists: SQLite limits the number of parameters per statement.
        for i in range(0, len(self._scope), IN_LIST_CHUNK):
            chunk = self._scope[i:i + IN_LIST_CHUNK]
            marks = ",".join("?" * len(chunk))
            for r in self.store.query(
                f"SELECT {self._state_sql().replace(':me', '?')} AS state, COUNT(*) AS n FROM crops c "
                f"WHERE c.id IN ({marks}) GROUP BY 1",
                [self.cfg.annotator, *chunk] if self.cfg.review else chunk,
            ):
                states[r["state"] or "unlabeled"] += r["n"]
        return sum(states.values()), states  # crops removed from the store meanwhile are not counted

    def refresh_counts(self, *, rescope: bool = False) -> None:
        """Recount from the store (picks up labels written by another process). rescope=True (the closing counts)
        also counts the crops added meanwhile that this session's options select (e.g. by a `fetch --redo`), which
        its queue, fixed when it started, does not show."""
        if rescope and self.cfg.queue != "suspects":
            self._scope = [int(r["id"]) for r in self._scope_rows()]
        self._total, self._counts = self._count()

    # -- moving ----------------------------------------------------------------------------------

    def next(self) -> None:
        if self.position < len(self.ids):
            self.position += 1

    def previous(self) -> None:
        """Back to the previous crop still in the store (crops another command removed are passed over)."""
        pos = self.position - 1
        while pos >= 0 and not self.exists(self.ids[pos]):
            pos -= 1
        if pos >= 0:
            self.position = pos

    def go_to(self, crop_id: int) -> None:
        if crop_id in self.ids:
            self.position = self.ids.index(crop_id)

    def advance(self) -> None:
        """Auto-advance: to the next crop that still needs this session's attention."""
        self.position = self._next_matching(min(self.position + 1, len(self.ids)))

    def page(self, size: int) -> list[int]:
        """The next `size` crops from the current position that still match (the grid's page)."""
        out, pos = [], self._next_matching(self.position)
        self.position = pos
        while pos < len(self.ids) and len(out) < size:
            if self._waiting(self.ids[pos]):
                out.append(self.ids[pos])
            pos += 1
        return out

    def after_page(self, page: list[int]) -> None:
        """Move past a finished page."""
        if page:
            last = self.ids.index(page[-1])
            self.position = self._next_matching(last + 1)

    # -- writing ---------------------------------------------------------------------------------

    @property
    def session_counts(self) -> Counter:
        """Crops this session gave a label, by the label they have now (a crop relabeled counts once)."""
        return Counter(v for k, v in self._now.items() if v is not None and v != self._before[k])

    @property
    def session_labels(self) -> int:
        """How many crops this session labeled: crops, not key presses (x then s on one crop is one)."""
        return sum(self.session_counts.values())

    @property
    def session_suggested(self) -> int:
        """Of `session_labels`, the crops whose label now is a suggestion accepted in this session."""
        return sum(1 for k, v in self._now.items()
                   if v is not None and v != self._before[k] and self._now_suggested.get(k))

    def set_label(self, crop_id: int, label: str, *, suggested: bool = False) -> int | None:
        """Commit one label event for one crop now (annotator, time, kind; suggested: it is the model's
        suggestion, accepted) as one undoable action.

        Returns the event id, or None when the crop was left alone (noted in `skipped`): it is no longer in the
        store, or another session labeled it after this one showed it (its label is kept, not overwritten).
        Raises UsageError for a value outside LABEL_VALUES.
        """
        return self.set_labels([crop_id], label, suggested=suggested)[0]

    def set_labels(self, crop_ids: list[int], label: str, *, suggested: bool = False) -> list[int | None]:
        """Commit `label` for each crop, as ONE action: a single undo restores all of them. Returns the event ids
        (None for a crop left alone, as in `set_label`)."""
        return self._commit_action([(crop_id, label) for crop_id in crop_ids], suggested)

    def _commit_action(self, items: list[tuple[int, str]], suggested: bool) -> list[int | None]:
        """Commit (crop_id, label) pairs as one undoable action."""
        for _, label in items:
            if label not in LABEL_VALUES:
                raise UsageError(f"unknown label {label!r}: choose one of {', '.join(LABEL_VALUES)}")
        action: list[UndoEntry] = []
        event_ids = [self._commit(crop_id, label, action, suggested) for crop_id, label in items]
        # (a crop left alone adds no undo entry: undo restores only what this action wrote)
        if action:
            self._undo.append(action)
        return event_ids

    def _commit(self, crop_id: int, label: str, action: list[UndoEntry], suggested: bool = False) -> int | None:
        # One write transaction (it takes the lock first): another process cannot remove or label the crop
        # between the check and the write.
        with self.store.transaction():
            if not self.store.query("SELECT 1 FROM crops WHERE id = ?", (crop_id,)):
                skipped = Skipped(crop_id, REMOVED)
            else:
                event = self._state_event(crop_id)
                if self._changed_meanwhile(crop_id, event):
                    skipped = Skipped(crop_id, CHANGED, event["label"], event["annotator"])
                else:
                    skipped = None
                    previous = event["label"] if event is not None else None
                    previous_suggested = bool(event is not None and event["suggested"] and not self.cfg.review)
                    event_id = self.store.append_label(crop_id, label, self.cfg.annotator, self.cfg.kind,
                                                       suggested=suggested)
        if skipped is not None:
            self.skipped.append(skipped)
            if skipped.why == REMOVED:
                self.exists(crop_id)  # remember it, recount
            log.info("crop %d: %s left alone (%s)", crop_id, label, skipped.why)
            return None
        self._mine.add(event_id)
        self._seen[crop_id] = event_id
        position = self.ids.index(crop_id) if crop_id in self.ids else self.position
        action.append(UndoEntry(crop_id, previous, position, previous_suggested))
        self._reopened.discard(crop_id)
        self._account(previous, label)
        self._before.setdefault(crop_id, previous)
        self._now[crop_id] = label
        self._now_suggested[crop_id] = suggested
        log.info("crop %d: %s -> %s (%s, %s%s, event %d)", crop_id, previous, label, self.cfg.annotator,
                 self.cfg.kind, ", suggested" if suggested else "", event_id)
        return event_id

    def label_current(self, label: str) -> int | None:
        """Label the crop on screen and auto-advance. Returns the event id (None when nothing is shown, or the
        crop was left alone: see `set_label` and `skipped`)."""
        crop_id = self.current_id
        if crop_id is None:
            return None
        event_id = self.set_label(crop_id, label)
        self.advance()
        return event_id

    def accept_current(self) -> int | None:
        """Accept the suggestion for the crop on screen (recorded as suggested) and auto-advance.

        Returns the event id, or None when nothing is shown or the crop has no suggestion.
        """
        crop_id = self.current_id
        sug = self.suggestion(crop_id) if crop_id is not None else None
        if sug is None:
            return None
        event_id = self.set_label(crop_id, sug.label, suggested=True)
        self.advance()
        return event_id

    def confirm_suggestions(self, crop_ids: list[int]) -> int:
        """Accept the suggestion of every crop here that still waits (the grid's confirm-page key), each
        event recorded as suggested, as ONE action (a single undo restores the page). Returns how many were
        written (crops left alone are in `skipped`)."""
        todo = [(i, s.label) for i in crop_ids if (s := self.suggestion(i)) is not None and self._waiting(i)]
        return sum(e is not None for e in self._commit_action(todo, suggested=True))

    def undo(self) -> int | None:
        """Undo this session's last action (one key's label, or a whole page after grid `a` or `y`).

        Appends, per crop, an event restoring the label it had before; shows the first crop again.
        Returns that crop's id, or None when this session has nothing to undo.
        """
        crop_ids = self.undo_action()
        return crop_ids[0] if crop_ids else None

    def undo_action(self) -> list[int]:
        """Like `undo`, returning every crop id the undone action had labeled and this undo restored (empty:
        nothing to undo, or every crop of it was left alone: removed from the store, or labeled by another
        session since, which undo does not overwrite; see `skipped`)."""
        if not self._undo:
            return []
        action = self._undo.pop()
        done = []
        for entry in reversed(action):
            with self.store.transaction():
                skipped = None
                if not self.store.query("SELECT 1 FROM crops WHERE id = ?", (entry.crop_id,)):
                    skipped = Skipped(entry.crop_id, REMOVED, undo=True)
                else:
                    event = self._state_event(entry.crop_id)
                    if event is not None and event["id"] not in self._mine:
                        skipped = Skipped(entry.crop_id, CHANGED, event["label"], event["annotator"], undo=True)
                    else:
                        before = event["label"] if event is not None else None
                        event_id = self.store.append_label(entry.crop_id, entry.previous, self.cfg.annotator,
                                                           self.cfg.kind, suggested=entry.previous_suggested)
            if skipped is not None:
                self.skipped.append(skipped)
                if skipped.why == REMOVED:
                    self.exists(entry.crop_id)
                continue
            done.append(entry.crop_id)
            self._mine.add(event_id)
            self._seen[entry.crop_id] = event_id
            self._account(before, entry.previous)
            self._now[entry.crop_id] = entry.previous
            self._now_suggested[entry.crop_id] = entry.previous_suggested
            if self._suspects_run is not None:
                self._reopened.add(entry.crop_id)
        self.position = action[0].position
        return [e.crop_id for e in action if e.crop_id in done]

    def _account(self, before: str | None, after: str | None) -> None:
        self._counts[before or "unlabeled"] -= 1
        self._counts[after or "unlabeled"] += 1

    def summary(self) -> SessionSummary:
        """What this session did, for the CLI's closing line."""
        p = self.progress()
        return SessionSummary(
            annotator=self.cfg.annotator, kind=self.cfg.kind, session_labels=self.session_labels,
            session_suggested=self.session_suggested,
            session_counts={k: v for k, v in self.session_counts.items() if v},
            total=p.total, decided=p.decided, counts={k: v for k, v in p.counts.items() if v},
        )
