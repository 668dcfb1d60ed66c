"""`lrfp stats`: what is in the store, as one JSON-able dict."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from lrfp import LABELS, SKIPPED, UNUSABLE, run_lock
from lrfp.bands import FACE_BANDS, face_band
from lrfp.crop_files import crop_file_problem
from lrfp.face_size import face_px, quantiles  # noqa: F401 - quantiles re-exported for older callers
from lrfp.label.agreement import agreement
from lrfp.split import group_key
from lrfp.store import Store


NOTE_STATUSES = ("duplicate",)
"""Source statuses whose stored message is a note (`note` in stats), not an error: a final, wanted outcome."""


def collect_stats(store: Store) -> dict[str, Any]:
    """Crops per source and label, split counts, face sizes, source statuses, and crop files that are
    missing or damaged under the store (`crop_files`: counts and one entry per crop).

    `running_now` names the commands at work on the store now ({"fetch": {pid, started, doing}, "import": {}});
    a source `running` or `importing` while no such command runs has `left_by_stopped_run` true (run_lock)."""
    label_names = (*LABELS, UNUSABLE, SKIPPED)
    rows = store.crops_with_labels()
    labels = Counter({name: 0 for name in (*label_names, "unlabeled")})
    per_source: dict[int, Counter] = {}
    sides: list[int] = []
    bands = Counter({name: 0 for name, _, _ in FACE_BANDS})
    groups = set()
    file_problems: list[dict[str, Any]] = []
    for r in rows:
        problem = crop_file_problem(store.crop_file(r["path"]))
        if problem is not None:
            file_problems.append({"crop_id": r["id"], "path": r["path"], "problem": problem})
        lab = r["label"] or "unlabeled"
        labels[lab] += 1
        per_source.setdefault(r["source_id"], Counter())[lab] += 1
        side = face_px(r)
        sides.append(side)
        bands[face_band(side)] += 1
        groups.add(group_key(r)[1])  # as `lrfp split` groups by default (before near-duplicate merges)

    held = {cmd: run_lock.is_held(store.root, cmd) for cmd in (run_lock.FETCH, run_lock.IMPORT)}
    fetching = fetch_sources(store) if held[run_lock.FETCH] else None
    sources = []
    dropped = Counter({"min_score": 0, "min_face": 0})  # detections `lrfp fetch` threw away, per filter
    for s in store.sources():
        dropped.update((json.loads(s["meta"]) if s["meta"] else {}).get("dropped") or {})
        counts = per_source.get(s["id"], Counter())
        sources.append({
            "name": s["name"], "kind": s["kind"], "url": s["url"], "path": s["path"], "license": s["license"],
            # a `duplicate`'s message says whose crops its footage gave; it is a note, not an error (docs/stats.md)
            "status": s["status"], "error": None if s["status"] in NOTE_STATUSES else s["error"],
            "note": s["error"] if s["status"] in NOTE_STATUSES else None, "width": s["width"], "height": s["height"],
            "crops": sum(counts.values()), "labels": {k: counts.get(k, 0) for k in (*label_names, "unlabeled")},
            # None of the statuses a run ends: False; unknown whether its command runs (unreadable lock): None
            "left_by_stopped_run": left_by_stopped_run(s["name"], s["status"], held, fetching, store.root),
        })

    splits: dict[str, Any] = {}
    for name in store.split_names():
        counts = store.split_label_counts(name)
        info = store.split_info(name)
        splits[name] = {"counts": counts, "seed": info["seed"], "params": info["params"],
                        "leakage": info["report"].get("leakage")}

    q = quantiles(sides)
    result = {
        "data_dir": str(store.root),
        "schema_version": store.schema_version(),
        "crops": len(rows),
        # crops an `lrfp import --redo` replaced, kept only because a saved split holds them (new splits leave them out)
        "kept_for_splits": len(store.superseded_import_crops()),
        "labels": dict(labels),
        "labeled": sum(labels[k] for k in LABELS),
        "unlabeled": labels["unlabeled"],
        "groups": len(groups),
        "crop_files": {
            "missing": sum(p["problem"] == "missing" for p in file_problems),
            "damaged": sum(p["problem"] != "missing" for p in file_problems),
            "problems": file_problems,
        },
        "face_px": {
            "shorter_side": dict(zip(("min", "p25", "median", "p75", "max"), q)) if q else None,
            "bands": dict(bands),
        },
        "sources": sources,
        "source_status": dict(Counter(s["status"] for s in sources)),
        "running_now": {cmd: (run_lock.holder(store.root, cmd) or {}) if cmd == run_lock.FETCH else {}
                        for cmd, h in held.items() if h},
        "fetch_dropped": dict(dropped),
        "splits": splits,
        "last_split": store.get_setting("last_split"),
        "predictions": {  # `lrfp predict`: crops with a model prediction, and those whose label says otherwise
            "crops": store.count_predicted_crops(),
            "disagree_with_label": store.count_prediction_disagreements(),
        },
        # current labels that are a suggestion accepted in `lrfp label` (model-suggested, human-confirmed)
        "labels_from_suggestions": store.count_suggested_labels(),
    }
    review = agreement(store)  # None until `lrfp label --review` has written a review
    if review is not None:
        result["agreement"] = review
    return result


def fetch_sources(store: Store) -> set[str] | None:
    """The names of the sources the fetch at work on the store works on (its lock's `sources`), or None when it has
    not said yet (its plan is not done) or cannot be read."""
    names = (run_lock.holder(store.root, run_lock.FETCH) or {}).get("sources")
    return set(map(str, names)) if isinstance(names, list) else None


def left_by_stopped_run(name: str, status: str, held: dict[str, bool | None], fetching: set[str] | None,
                        root: Path) -> bool | None:
    """Whether source `name`, with `status`, was left by a run that was killed (run_lock.LEFT_BY): its command's
    lock is not held (for `importing`, its source's own `import.NAME` lock in the store at `root`); or, for
    `running`, a fetch runs but does not work on it (`fetching`, its lock's `sources`). None when it cannot be
    told (an unreadable lock); False for any other status."""
    if status not in run_lock.LEFT_BY:
        return False
    if status == "importing":
        running = run_lock.is_held(root, f"{run_lock.IMPORT}.{name}")
    else:
        running = held[run_lock.LEFT_BY[status]]
    if running is None:
        return None
    if status == "running" and running and fetching is not None:
        return name not in fetching
    return running is False


def stats_json(stats: dict[str, Any]) -> str:
    return json.dumps(stats, indent=2, sort_keys=False, default=str)
