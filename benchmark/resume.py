"""Resuming an unfinished `lrfp bench`: which runs an earlier benchmark in the same --out already finished.

Before its first run a benchmark writes `plan.json` to --out: every planned run's identity (model, norm, seed,
epochs and budgets, input size, optimizer and learning rate, batch size, weights, precision option, speed
paths) and the data it trains on (name, split, class counts, a digest of every crop and label, --eval-on's).
Rerunning the same command finds that plan. When the plan is the same and some runs have not finished, the
finished runs' rows and history are kept and only the others are trained: a run cut short starts again from
its first epoch, a failed run is tried again. Runs finish in any order, so "finished" is per run: a row for
every budget and eval set, none of them an error. A finished benchmark, or `--fresh`, starts a new benchmark
(the earlier results move to previous-<time>/, `report.archive_previous`); an unfinished benchmark of another
plan is refused (`differences` names what changed) rather than moved aside by a typo.

The config's checkpoint stays: it holds the best validation weights of every run trained into this --out so
far, a run cut short included, and the runs trained now replace it only if they beat it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLAN_JSON = "plan.json"

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
    """The benchmark in `out` by its plan.json, or None where there is none (or it cannot be read)."""
    from benchmark.report import HISTORY_JSONL, RESULTS_JSONL, read_jsonl

    try:
        earlier = json.loads((out / PLAN_JSON).read_text())
        run_keys = earlier["runs"]
        sets = ["test", *earlier.get("eval_sets", {})]
        needed = {r["run"]: {(e, s) for e in r["eval_epochs"] for s in sets} for r in run_keys}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # a line cut in half by a crash is left out: its run is then not finished and is trained again
    rows = read_jsonl(out / RESULTS_JSONL, skip_bad=True)
    have: dict[str, set[tuple[Any, Any]]] = {}
    failed: set[str] = set()
    for row in rows:
        name = _row_run(row)
        if row.get("error"):
            failed.add(name)
        else:
            have.setdefault(name, set()).add((row.get("epochs"), row.get("eval_set")))
    done = {n for n, need in needed.items() if need <= have.get(n, set()) and n not in failed}
    keep = [r for r in rows if _row_run(r) in done and not r.get("error")]
    history = [h for h in read_jsonl(out / HISTORY_JSONL, skip_bad=True) if h.get("run") in done]
    return Earlier(earlier, set(needed), done, keep, history)


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
