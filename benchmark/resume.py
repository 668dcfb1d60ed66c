"""Resuming an unfinished `lrfp bench`: which runs an earlier benchmark in the same --out already finished.

Before its first run a benchmark writes `plan.json` to --out: every planned run's identity (model, norm, seed,
epochs and budgets, input size, optimizer and learning rate, batch size, weights, precision option, speed
paths) and the data it trains on (name, split, class counts, a digest of every crop and label, --eval-on's).
Rerunning the same command finds that plan. When the plan is the same and some runs have not finished, the
finished runs' rows and history are kept and only the others are trained: a run cut short starts again from
its first epoch, a failed run is tried again. Runs finish in any order, so "finished" is per run: a row for
every budget and eval set, none of them an error. The plan is the set of runs: the order of the --model options
does not matter. Where every run of the same plan finished, nothing is trained (the report is written again
from the kept rows). A finished benchmark of another plan, one whose plan.json cannot be read (`UnreadablePlan`,
the reason named), or `--fresh`, starts a new benchmark (the earlier results move to previous-<time>/,
`report.archive_previous`); an unfinished benchmark of another plan is refused (`differences` names what
changed) rather than moved aside by a typo. A file that cannot be read at all (permissions, a folder in its
place) is a BenchError naming it.

The config's checkpoint stays: it holds the best validation weights of every run trained into this --out so
far, a run cut short included, and the runs trained now replace it only if they beat it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lrfp.errors import BenchError

PLAN_JSON = "plan.json"


class UnreadablePlan(ValueError):
    """plan.json is there but is not a plan lrfp wrote (empty, cut short, not JSON, another shape); the
    message says why."""

# RunConfig fields that say what a run is; amp/channels_last are left out (on a CPU `--precision auto` picks them
# per config by a timed probe, which may choose otherwise in another session; the option itself is in the plan)
_RUN_FIELDS = ("model", "norm", "seed", "epochs", "eval_epochs", "input_size", "optimizer", "lr", "momentum",
               "batch_size", "pretrained", "rotation_degrees", "protocol", "compile", "cuda_graph")


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

    @property
    def finished(self) -> bool:
        return self.done == self.needed


def plan(runs: list[Any], data: Any, eval_sets: dict[str, Any], precision: str, stack_seeds: bool, device: str
         ) -> dict[str, Any]:
    """The plan of a benchmark as JSON-ready data (runs: `engine.RunConfig`s before the precision probe).

    The data is identified by its crops: a digest of every subset's (crop key, label) pairs, so that another
    split, a relabeled crop or another --eval-on folder is another plan even where the counts stay the same.
    """
    run_keys = [{"run": r.run_name, **{k: v for k, v in asdict(r).items() if k in _RUN_FIELDS}} for r in runs]
    return json.loads(json.dumps({
        "runs": run_keys, "precision": precision, "stack_seeds": stack_seeds, "device": device.split(":")[0],
        "data": {"name": data.name, "kind": data.kind, "split": data.audit.get("split"), "counts": data.counts(),
                 "crops": _digest(data.subsets)},
        "eval_sets": {name: _digest({name: sub}) for name, sub in sorted(eval_sets.items())},
    }, default=str))


def _digest(subsets: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(subsets):
        sub = subsets[name]
        h.update(f"[{name}]\n".encode())
        for key, label in zip(sub.keys, [int(v) for v in sub.labels]):
            h.update(f"{key}\t{label}\n".encode())
    return h.hexdigest()[:20]


def write_plan(out: Path, the_plan: dict[str, Any]) -> None:
    tmp = out / (PLAN_JSON + ".tmp")
    tmp.write_text(json.dumps(the_plan, indent=1, sort_keys=True))
    tmp.replace(out / PLAN_JSON)


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
    needed = _needed(earlier)
    rows, bad_rows = _read_objects(out / RESULTS_JSONL)
    done, _ = _ended(needed, rows)
    keep = [r for r in rows if _row_run(r) in done and not r.get("error")]
    history, bad_history = _read_objects(out / HISTORY_JSONL)
    history = [h for h in history if h.get("run") in done]
    bad = {name: n for name, n in ((RESULTS_JSONL, bad_rows), (HISTORY_JSONL, bad_history)) if n}
    return Earlier(earlier, set(needed), done, keep, history, bad)


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
    if not isinstance(the_plan.get("eval_sets", {}), dict):
        raise UnreadablePlan("not a plan lrfp wrote: its eval_sets are not a mapping")
    return the_plan


def same_plan(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two plans ask for the same benchmark: the same set of runs (in any order: `--model a --model b`
    and `--model b --model a` are one plan) and the same data, eval sets and options."""
    return _canonical(a) == _canonical(b)


def _canonical(the_plan: dict[str, Any]) -> dict[str, Any]:
    return {**the_plan, "runs": sorted(json.dumps(r, sort_keys=True) for r in the_plan.get("runs", []))}


def runs_left(the_plan: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The plan's runs that have not ended in `rows`: neither a row for every budget and eval set nor an error
    row (a failed run has ended; a rerun tries it again). Empty: nothing was left to run."""
    needed = _needed(the_plan)
    done, failed = _ended(needed, rows)
    return [name for name in needed if name not in done | failed]


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


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two plans, in the options' words (for the message that refuses a mismatch)."""
    out = []
    labels = {"model": "models", "norm": "norms", "seed": "seeds", "epochs": "--epochs", "eval_epochs": "budgets",
              "input_size": "--input-size", "batch_size": "--batch-size", "pretrained": "pretrained weights",
              "protocol": "--protocol", "lr": "learning rate", "compile": "--compile", "cuda_graph": "--cuda-graph"}
    for key, label in labels.items():
        a = sorted({json.dumps(r.get(key)) for r in before.get("runs", [])})
        b = sorted({json.dumps(r.get(key)) for r in now.get("runs", [])})
        if a != b:
            out.append(f"{label} {', '.join(a)} before, {', '.join(b)} now")
    if before.get("data") != now.get("data"):
        out.append("the data or its split")
    for key, label in (("eval_sets", "--eval-on"), ("precision", "--precision"), ("stack_seeds", "--stack-seeds"),
                       ("device", "the device")):
        if before.get(key) != now.get(key):
            out.append(label)
    return out or ["the plan"]


def _row_run(row: dict[str, Any]) -> str:
    """The run a result row belongs to, named as `engine.RunConfig.run_name` names it."""
    return f"{row.get('config')}-s{row.get('seed')}"
