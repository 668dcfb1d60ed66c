"""Resuming an unfinished `lrfp bench`: which runs an earlier benchmark in the same --out already finished.

Before its first run a benchmark writes `plan.json` to --out: every planned run's identity (model, norm, seed,
epochs and budgets, input size, optimizer and learning rate, batch size, weights, precision option, speed
paths) and the data it trains on by its content (split and split seed, class counts, digests of which crops
are in each subset, their labels and their pixels; the same for --eval-on's images), not by how its path was
typed. Rerunning the same command finds that plan. When the plan is the same and some runs have not finished,
the finished runs' rows and history are kept and only the others are trained: a run cut short starts again
from its first epoch, a failed run is tried again. Runs finish in any order, so "finished" is per run: a row
for every budget and eval set, none of them an error. The plan is the set of runs: the order of the --model
options does not matter. Where every run of the same plan finished, nothing is trained (the report is written
again from the kept rows). A plan that only adds runs to the earlier one, all else identical (`added_runs`),
is resumed the same way. A finished benchmark of another plan, one whose plan.json cannot be read
(`UnreadablePlan`, the reason named), or `--fresh`, starts a new benchmark (the earlier results move to
previous-<time>/, `report.archive_previous`); an unfinished benchmark of another plan is refused
(`differences` names what changed: `option_differences`, which its own command undoes, and
`data_differences`, data changed on disk, which it cannot) rather than moved aside by a typo. A file that
cannot be read at all (permissions, a folder in its place) is a BenchError naming it.

plan.json also records the benchmark's sessions (each `lrfp bench` into this --out that trained its runs or
wrote its report again): when each began, how many runs it was to train and its training wall time, so that the
report states the benchmark's wall time over all its sessions, not only the last one's (`session_record`).

The config's checkpoint stays: it holds the best validation weights of every run trained into this --out so
far, a run cut short included, and the runs trained now replace it only if they beat it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from lrfp.errors import BenchError

PLAN_JSON = "plan.json"


class UnreadablePlan(ValueError):
    """plan.json is there but is not a plan lrfp wrote (empty, cut short, not JSON, another shape); the
    message says why."""

# RunConfig fields that say what a run is; amp/channels_last are left out (on a CPU `--precision auto` picks them
# per config by a timed probe, which may choose otherwise in another session; the option itself is in the plan)
_RUN_FIELDS = ("model", "norm", "seed", "epochs", "eval_epochs", "input_size", "optimizer", "lr", "momentum",
               "batch_size", "pretrained", "rotation_degrees", "rotation_interpolation", "protocol", "compile",
               "cuda_graph")


@dataclass
class Earlier:
    """The benchmark an earlier session left in --out: its plan, the runs it planned and finished, and the
    finished runs' rows and history entries (to keep if it is resumed)."""

    plan: dict[str, Any]
    needed: set[str]
    done: set[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: dict[str, int] = field(default_factory=dict)  # file name -> lines left out (not a JSON object)
    no_history: list[str] = field(default_factory=list)  # finished runs with no epoch in history.jsonl
    history_missing: bool = False  # history.jsonl is not there at all
    # plan.json's "sessions" (`session_record`); None where it has none (written by an lrfp that did not record them)
    sessions: list[dict[str, Any]] | None = None

    @property
    def finished(self) -> bool:
        return self.done == self.needed


def plan(runs: list[Any], data: Any, eval_sets: dict[str, Any], precision: str, stack_seeds: bool, device: str
         ) -> dict[str, Any]:
    """The plan of a benchmark as JSON-ready data (runs: `engine.RunConfig`s before the precision probe).

    The data is identified by its content, not by how its path was spelled: a digest of every subset's (crop
    key, label) pairs (`crops`), of which crops are in which subset (`members`), and of their pixels (`pixels`),
    so that another split, a relabeled crop, a re-cropped store or another --eval-on folder is another plan even
    where the counts stay the same. `name` is for reading only: a local --dataset folder's resolved absolute
    path (a Hub repo id as given), or the store's split name; plans are compared without it (`same_plan`).
    """
    run_keys = [{"run": r.run_name, **{k: v for k, v in asdict(r).items() if k in _RUN_FIELDS}} for r in runs]
    return json.loads(json.dumps({
        "runs": run_keys, "precision": precision, "stack_seeds": stack_seeds, "device": device.split(":")[0],
        "data": {"name": _source_name(data), "kind": data.kind, "split": data.audit.get("split"),
                 "split_seed": data.audit.get("split_seed"), "counts": data.counts(),
                 "crops": _digest(data.subsets), "members": _members(data.subsets), "pixels": _pixels(data.subsets)},
        "eval_sets": {name: _digest({name: sub}) for name, sub in sorted(eval_sets.items())},
        "eval_images": {name: {"images": len(sub.labels), "members": _members({name: sub}),
                               "pixels": _pixels({name: sub})} for name, sub in sorted(eval_sets.items())},
    }, default=str))


def _source_name(data: Any) -> str:
    """A local --dataset folder as its resolved absolute path (`pub`, `pub/`, `./x/../pub` are one folder); a Hub
    repo id, or a store's split name, as it is."""
    path = Path(str(data.name)).expanduser()
    if data.kind == "dataset" and path.exists():
        return str(path.resolve())
    return str(data.name)


def _subsets_digest(subsets: dict[str, Any], chunks: Callable[[Any], Iterable[bytes]]) -> str:
    """SHA-256 (its first 20 hex digits) over the subsets in name order: each one's name, then `chunks(subset)`."""
    h = hashlib.sha256()
    for name in sorted(subsets):
        h.update(f"[{name}]\n".encode())
        for chunk in chunks(subsets[name]):
            h.update(chunk)
    return h.hexdigest()[:20]


def _digest(subsets: dict[str, Any]) -> str:
    """Which crops (keys) are in which subset, with their labels."""
    return _subsets_digest(subsets, lambda sub: (f"{key}\t{int(label)}\n".encode()
                                                 for key, label in zip(sub.keys, sub.labels)))


def _members(subsets: dict[str, Any]) -> str:
    """Which crops (keys) are in which subset, labels left out."""
    return _subsets_digest(subsets, lambda sub: (f"{key}\n".encode() for key in sub.keys))


def _pixels(subsets: dict[str, Any]) -> str:
    """Every crop's pixels (shape, dtype and bytes), in subset and key order."""
    import numpy as np

    def chunks(sub: Any) -> Iterator[bytes]:
        for image in sub.images:
            a = np.ascontiguousarray(image)
            yield f"{a.shape}{a.dtype}".encode()
            yield a.tobytes()

    return _subsets_digest(subsets, chunks)


SESSIONS = "sessions"  # plan.json's key for the sessions' record; plans are compared without it
# where an lrfp that did not record sessions ran this benchmark first: how many sessions, and how long, is unknown
UNRECORDED = {"unrecorded": "the sessions of an lrfp that did not record them"}


def write_plan(out: Path, the_plan: dict[str, Any], sessions: list[dict[str, Any]] | None = None) -> None:
    """plan.json: the plan and its sessions' record (`session_record`; [] where None), written to a temporary file
    and renamed into place. Raises BenchError naming the file where it cannot be written."""
    path = out / PLAN_JSON
    tmp = out / (PLAN_JSON + ".tmp")
    try:
        tmp.write_text(json.dumps({**the_plan, SESSIONS: sessions or []}, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError as e:
        raise BenchError(f"cannot write {path}: {e.strerror or e}; make it (and its folder) writable, "
                         "or give another --out") from e


def session_record(earlier: Earlier | None) -> list[dict[str, Any]]:
    """The sessions before this one, to which this one is appended: [] for a new benchmark; an earlier one's
    record; or, where its plan.json has none (an older lrfp wrote it), `UNRECORDED` standing for its sessions.

    Each session is {"started": UTC ISO time, "runs": runs it was to train, "ended_runs": those that ended
    (finished or failed), "wall_seconds": the wall time of its training grid (`harness._run_planned`'s t0 to its
    end), None until it ends: a session killed before it ended (SIGKILL, a crash) keeps None}.
    """
    if earlier is None:
        return []
    return list(earlier.sessions) if earlier.sessions is not None else [dict(UNRECORDED)]


def read_earlier(out: Path) -> Earlier | None:
    """The benchmark in `out` by its plan.json, or None where there is no plan.json.

    Raises UnreadablePlan where plan.json is there but cannot be parsed as a plan, and BenchError (naming the
    file) where plan.json, results.jsonl or history.jsonl cannot be read at all. A results or history line that
    is not a JSON object (a crash in the middle of writing it) is left out and counted in `bad_lines`; a run
    with a results line left out is not finished and is trained again.
    """
    from benchmark.report import HISTORY_JSONL, RESULTS_JSONL

    text = _read_bytes(out / PLAN_JSON)
    if text is None:
        return None
    earlier = parse_plan(text)
    sessions = earlier.pop(SESSIONS, None)
    if not (isinstance(sessions, list) and all(isinstance(x, dict) for x in sessions)):
        sessions = None  # none recorded, or edited into another shape: unknown
    needed = _needed(earlier)
    rows, bad_rows = _read_objects(out / RESULTS_JSONL)
    done, _ = _ended(needed, rows)
    keep = [r for r in rows if _row_run(r) in done and not r.get("error")]
    history_missing = not (out / HISTORY_JSONL).exists()
    history, bad_history = _read_objects(out / HISTORY_JSONL)
    history = [h for h in history if h.get("run") in done]
    bad = {name: n for name, n in ((RESULTS_JSONL, bad_rows), (HISTORY_JSONL, bad_history)) if n}
    no_history = sorted(done - {h.get("run") for h in history})
    return Earlier(earlier, set(needed), done, keep, history, bad, no_history, history_missing, sessions)


def parse_plan(text: bytes) -> dict[str, Any]:
    """A plan.json's content as a plan; UnreadablePlan says why it is not one."""
    if not text.strip():
        raise UnreadablePlan("it is empty")
    try:
        the_plan = json.loads(text)
    except ValueError as e:  # UnicodeDecodeError is one too
        raise UnreadablePlan(f"not JSON: {e}") from None
    runs = the_plan.get("runs") if isinstance(the_plan, dict) else None
    if not isinstance(runs, list) or not runs or not all(
            isinstance(r, dict) and isinstance(r.get("run"), str) and isinstance(r.get("eval_epochs"), list)
            and all(isinstance(e, int) for e in r["eval_epochs"]) for r in runs):
        raise UnreadablePlan("not a plan lrfp wrote: no list of runs, each with its name and budgets")
    for r in runs:  # lrfp before 2026-11-30 rotated with bilinear sampling and did not write it down
        r.setdefault("rotation_interpolation", OLD_ROTATION_INTERPOLATION)
    if not isinstance(the_plan.get("eval_sets", {}), dict):
        raise UnreadablePlan("not a plan lrfp wrote: its eval_sets are not a mapping")
    return the_plan


def same_plan(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two plans ask for the same benchmark: the same set of runs (in any order: `--model a --model b`
    and `--model b --model a` are one plan) and the same data (by content: not its path's spelling), eval sets
    and options. A field only one of them has (a plan an older lrfp wrote lacks the newer digests) is left out."""
    return _canonical(a, b) == _canonical(b, a)


def _canonical(the_plan: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    data, other_data = the_plan.get("data") or {}, other.get("data") or {}
    return {**{k: v for k, v in the_plan.items() if k in other},
            "data": {k: v for k, v in data.items() if k != "name" and k in other_data},
            "runs": sorted(json.dumps(r, sort_keys=True) for r in the_plan.get("runs", []))}


def added_runs(before: dict[str, Any], now: dict[str, Any]) -> list[str] | None:
    """The runs `now` adds where it is `before` plus more runs (more seeds, another --model) and everything
    else identical: every run of `before` unchanged (its model, norm, seed, epochs and budgets, input size,
    optimizer, batch size, weights...), the same data by content, the same eval sets, the same --precision
    option, device kind and --stack-seeds; so a finished run of `before` is a finished run of `now`, its rows
    valid. None where it is not (another plan); [] where the runs are the same."""
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    had = {key(r) for r in before.get("runs", [])}
    have = {key(r): r["run"] for r in now.get("runs", [])}
    if not had <= set(have):
        return None
    rest = lambda p, o: {k: v for k, v in _canonical(p, o).items() if k != "runs"}  # noqa: E731
    if rest(before, now) != rest(now, before):
        return None
    return [name for k, name in have.items() if k not in had]


def runs_left(the_plan: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The plan's runs that have not ended in `rows`: neither a row for every budget and eval set nor an error
    row (a failed run has ended; a rerun tries it again). Empty: nothing was left to run."""
    needed = _needed(the_plan)
    done, failed = _ended(needed, rows)
    return [name for name in needed if name not in done | failed]


def planned_runs(the_plan: dict[str, Any]) -> set[str]:
    """The names of the plan's runs."""
    return set(_needed(the_plan))


def _needed(the_plan: dict[str, Any]) -> dict[str, set[tuple[Any, Any]]]:
    """Run name -> the (budget, eval set) rows it writes when it finishes."""
    sets = ["test", *the_plan.get("eval_sets", {})]
    return {r["run"]: {(e, s) for e in r["eval_epochs"] for s in sets} for r in the_plan["runs"]}


def _ended(needed: dict[str, set[tuple[Any, Any]]], rows: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(finished: every row there and none an error, failed: an error row) among the runs of `needed`."""
    have: dict[str, set[tuple[Any, Any]]] = {}
    failed: set[str] = set()
    for row in rows:
        name = _row_run(row)
        if row.get("error"):
            failed.add(name)
        else:
            have.setdefault(name, set()).add((row.get("epochs"), row.get("eval_set")))
    done = {n for n, need in needed.items() if need <= have.get(n, set()) and n not in failed}
    return done, failed & set(needed)


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes, None where it does not exist; BenchError naming it where it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BenchError(f"{path} cannot be read ({e.strerror or e}), so the benchmark in {path.parent} cannot be "
                         "resumed: make it readable, or add --fresh to start anew (the earlier results move to "
                         "previous-<time>/)") from e


def _read_objects(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a .jsonl file, one a line, and how many non-blank lines were not one."""
    data = _read_bytes(path)
    objects: list[dict[str, Any]] = []
    bad = 0
    for line in (data or b"").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            objects.append(obj)
        else:
            bad += 1
    return objects, bad


OLD_ROTATION_INTERPOLATION = "bilinear"  # what lrfp rotated with before it recorded it (benchmark.data)


def made_by_an_older_lrfp(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether `before` differs from `now` in a setting that only an older lrfp had, so no command of this one gives
    it back: its runs rotated with bilinear sampling (lrfp before 2026-11-30; now always the protocol's)."""
    had = {r.get("rotation_interpolation") for r in before.get("runs", [])}
    have = {r.get("rotation_interpolation") for r in now.get("runs", [])}
    return OLD_ROTATION_INTERPOLATION in had - have


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two plans, in the words a user knows: the options first (`option_differences`),
    then the data (`data_differences`)."""
    return option_differences(before, now) + data_differences(before, now) or ["the plan"]


def option_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs in the options (models, seeds, --epochs, --eval-on's name, --precision...): rerunning the
    earlier command gives the earlier plan back."""
    out = []
    labels = {"model": "models", "norm": "norms", "seed": "seeds", "epochs": "--epochs", "eval_epochs": "budgets",
              "input_size": "--input-size", "batch_size": "--batch-size", "pretrained": "pretrained weights",
              "protocol": "--protocol", "optimizer": "optimizer", "lr": "learning rate", "momentum": "momentum",
              "rotation_degrees": "rotation",
              "rotation_interpolation": "rotation interpolation", "compile": "--compile", "cuda_graph": "--cuda-graph"}
    for key, label in labels.items():
        a = sorted({_words(r.get(key)) for r in before.get("runs", [])})
        b = sorted({_words(r.get(key)) for r in now.get("runs", [])})
        if a != b:
            out.append(f"{label} {', '.join(a)} before, {', '.join(b)} now")
    d0, d1 = before.get("data") or {}, now.get("data") or {}
    if d0.get("kind") != d1.get("kind") or (d0.get("kind") == "dataset" and d0.get("name") != d1.get("name")
                                             and data_differences(before, now)):
        out.append(f"the data: {_data_words(d0)} before, {_data_words(d1)} now")
    elif d0.get("split") != d1.get("split"):
        out.append(f"the split: {d0.get('split')} before, {d1.get('split')} now")
    e0, e1 = sorted(before.get("eval_sets") or {}), sorted(now.get("eval_sets") or {})
    if e0 != e1:
        out.append(f"--eval-on: {', '.join(e0) or 'none'} before, {', '.join(e1) or 'none'} now")
    for key, label in (("precision", "--precision"), ("stack_seeds", "--stack-seeds"), ("device", "the device")):
        if before.get(key) != now.get(key):
            out.append(f"{label} {before.get(key)} before, {now.get(key)} now")
    return out


def data_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What changed in the data itself under the same name (the same split, the same --eval-on folder): its
    labels, which crops are in each subset, the split's seed, the crops' or eval images' pixels. Such a change
    is on disk, so rerunning the earlier command cannot bring the earlier data back."""
    out = []
    d0, d1 = before.get("data") or {}, now.get("data") or {}
    if d0.get("kind") == d1.get("kind") and d0.get("split") == d1.get("split") and (
            d0.get("kind") != "dataset" or d0.get("name") == d1.get("name")):
        out += _content_change(d0, d1, "the data" if d0.get("kind") == "dataset" else f"split {d0.get('split')}",
                               "crops")
    e0, e1 = before.get("eval_sets") or {}, now.get("eval_sets") or {}
    i0, i1 = before.get("eval_images") or {}, now.get("eval_images") or {}
    for name in sorted(set(e0) & set(e1)):
        out += _content_change({"crops": e0[name], **(i0.get(name) or {})}, {"crops": e1[name], **(i1.get(name) or {})},
                               f"--eval-on {name}", "images")
    return out


def _content_change(a: dict[str, Any], b: dict[str, Any], what: str, items: str) -> list[str]:
    """The change between two content records (crops digest, members, pixels, counts or images, split_seed)."""
    both = lambda k: k in a and k in b and a[k] is not None and b[k] is not None  # noqa: E731
    out = []
    if both("split_seed") and a["split_seed"] != b["split_seed"]:
        out.append(f"{what} was made again with another seed ({a['split_seed']} before, {b['split_seed']} now): other "
                   "crops are in train, validation and test")
    elif both("members") and a["members"] != b["members"]:
        sizes = ""
        if both("images") and a["images"] != b["images"]:
            sizes = f" ({a['images']} before, {b['images']} now)"
        elif both("counts") and a["counts"] != b["counts"]:
            sizes = f" (per subset: {_sizes(a['counts'])} before, {_sizes(b['counts'])} now)"
        out.append(f"{what}: other {items} than before{sizes} (added, removed or moved between subsets)"
                   if items == "crops" else f"{what}: its {items} changed{sizes} (added, removed, renamed or moved to another class)")
    elif both("crops") and a["crops"] != b["crops"]:
        out.append(f"{what}: the labels of some of its {items} changed" if both("members") else
                   f"{what}: its {items} or their labels changed")
    elif both("pixels") and a["pixels"] != b["pixels"]:
        out.append(f"{what}: the pixels of some of its {items} changed (the same names and labels)")
    return out


def _words(value: Any) -> str:
    """An option's value as a user types it: model3, not "model3"; none for no norm."""
    return "none" if value is None else value if isinstance(value, str) else json.dumps(value)


def _sizes(counts: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())


def _data_words(d: dict[str, Any]) -> str:
    return (f"--dataset {d.get('name')}" if d.get("kind") == "dataset" else f"split {d.get('split')} of a store"
            if d.get("kind") == "store" else str(d.get("name")))


def _row_run(row: dict[str, Any]) -> str:
    """The run a result row belongs to, named as `engine.RunConfig.run_name` names it."""
    return f"{row.get('config')}-s{row.get('seed')}"
