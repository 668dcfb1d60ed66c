"""Typed progress events of `run_bench` (what the CLI's progress display and a test's callback receive)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union


@dataclass(frozen=True)
class DecodeProgress:
    """Images of the split decoded so far (store splits only)."""

    done: int
    total: int


@dataclass(frozen=True)
class PrecisionChosen:
    """`--precision auto` on a CPU timed a few steps of a config in fp32 and bf16 (or read the cached timing)."""

    config: str
    input_size: int
    bf16: bool
    fp32_ms: float | None  # one training step at the protocol's batch size, milliseconds; None if the probe failed
    bf16_ms: float | None
    cached: bool
    error: str = ""  # why the probe failed ("RuntimeError: ..."): then fp32 was chosen as the fallback


@dataclass(frozen=True)
class EvalOverlap:
    """Some --eval-on images are also in the benchmarked data (benchmark.overlap); `warning` says how many."""

    eval_set: str
    warning: str


@dataclass(frozen=True)
class GridPlanned:
    runs: list[str]  # run names (config-sSEED), in order
    total_epochs: int
    device: str
    device_name: str
    jobs: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # subset -> label -> crops


@dataclass(frozen=True)
class GridResumed:
    """--out held an unfinished benchmark of the same plan: `done` runs are kept, the rest are trained."""

    done: list[str]  # run names (config-sSEED) already finished
    total: int  # runs in the plan


@dataclass(frozen=True)
class GridFinished:
    """--out held this very benchmark (the same plan) with every run finished: nothing is trained; the report
    and plots are written again from its rows."""

    total: int  # runs in the plan
    results: str  # the path of results.md


@dataclass(frozen=True)
class PreviousMoved:
    """A new benchmark moved the earlier one's outputs in --out to `path` (before its first run)."""

    path: str
    reason: str = ""  # why what was there is not resumed, where that is not the usual (e.g. plan.json unreadable)


@dataclass(frozen=True)
class Notice:
    """Something the user asked for that this benchmark does otherwise, and why (e.g. seeds not stacked)."""

    text: str


@dataclass(frozen=True)
class RunStarted:
    run: str


@dataclass(frozen=True)
class EpochDone:
    entry: dict[str, Any]  # one history row: run, config, epoch, epochs, train/val loss and accuracy, seconds


@dataclass(frozen=True)
class RowWritten:
    row: dict[str, Any]  # one result row (already on disk), `error` non-empty for a failed run


@dataclass(frozen=True)
class RunEnded:
    run: str


BenchEvent = Union[DecodeProgress, PrecisionChosen, EvalOverlap, GridPlanned, GridResumed, GridFinished, PreviousMoved,
                   Notice, RunStarted, EpochDone, RowWritten, RunEnded]
OnEvent = Callable[[BenchEvent], None]
