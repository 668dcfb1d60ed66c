"""Resuming an unfinished `lrfp bench`: which runs an earlier benchmark in the same --out already finished.

Before its first run a benchmark writes `plan.json` to --out: every planned run's identity (model, norm, seed,
epochs and budgets, input size, optimizer and learning rate, batch size, weights, precision option, speed
paths) and the data it trains on (name, split, class counts per subset, --eval-on). Rerunning the same command
finds that plan. When it is the same and some runs have not finished, the finished runs' rows and history are
kept and only the others are trained: a run cut short starts again from its first epoch, a failed run is
tried again. Runs finish in any order, so "finished" is per run: a row for every budget and eval set, none of
them an error. A finished benchmark, another plan, or `--fresh` starts a new benchmark (the earlier results
move to previous-<time>/, `report.archive_previous`).

The config's checkpoint stays: it holds the best validation weights of every run trained into this --out so
far, a run cut short included, and the runs trained now replace it only if they beat it.
"""

from __future__ import annotations

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
class Resumed:
    """What an unfinished earlier benchmark left: the finished runs' names, rows and history entries."""

    done: set[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def plan(runs: list[Any], data: Any, eval_sets: dict[str, Any], precision: str, stack_seeds: bool, device: str
         ) -> dict[str, Any]:
    """The plan of a benchmark as JSON-ready data (runs: `engine.RunConfig`s before the precision probe)."""
    run_keys = [{k: v for k, v in asdict(r).items() if k in _RUN_FIELDS} for r in runs]
    return json.loads(json.dumps({
        "runs": run_keys, "precision": precision, "stack_seeds": stack_seeds, "device": device.split(":")[0],
        "data": {"name": data.name, "kind": data.kind, "split": data.audit.get("split"), "counts": data.counts()},
        "eval_sets": sorted(eval_sets),
    }, default=str))


def write_plan(out: Path, the_plan: dict[str, Any]) -> None:
    tmp = out / (PLAN_JSON + ".tmp")
    tmp.write_text(json.dumps(the_plan, indent=1, sort_keys=True))
    tmp.replace(out / PLAN_JSON)


def find_unfinished(out: Path, the_plan: dict[str, Any], runs: list[Any], eval_set_names: list[str]) -> Resumed | None:
    """The unfinished benchmark of this very plan in `out`, or None (no plan there, another plan, every run
    already finished, or none finished yet: then a new benchmark is the same thing)."""
    from benchmark.report import HISTORY_JSONL, RESULTS_JSONL

    try:
        earlier = json.loads((out / PLAN_JSON).read_text())
    except (OSError, ValueError):
        return None
    if earlier != the_plan:
        return None
    rows = _read_rows(out / RESULTS_JSONL)
    sets = ["test", *eval_set_names]
    needed = {r.run_name: {(e, s) for e in r.eval_epochs for s in sets} for r in runs}
    have: dict[str, set[tuple[int, str]]] = {}
    failed: set[str] = set()
    for row in rows:
        name = _run_name(row)
        if row.get("error"):
            failed.add(name)
        else:
            have.setdefault(name, set()).add((row.get("epochs"), row.get("eval_set")))
    done = {n for n, need in needed.items() if need <= have.get(n, set()) and n not in failed}
    if not done or done == set(needed):
        return None
    history = [h for h in _read_rows(out / HISTORY_JSONL) if h.get("run") in done]
    return Resumed(done, [r for r in rows if _run_name(r) in done and not r.get("error")], history)


def _run_name(row: dict[str, Any]) -> str:
    return f"{row.get('config')}-s{row.get('seed')}"


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of `path`; a line that does not parse (a crash in the middle of writing it) is left out:
    its run is then not finished and is trained again."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out
