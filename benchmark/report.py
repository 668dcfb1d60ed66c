"""Results as flat rows: appended to results.jsonl as they come, mirrored to results.csv, summarized in
results.md beside the thesis's numbers, and plotted (learning curves, accuracy vs epochs, vs face size)."""

from __future__ import annotations

import bisect
import contextlib
import csv
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from benchmark.metrics import FACE_BANDS, mean_std, wilson_ci
from benchmark.thesis import NORM_NAMES, THESIS_EPOCHS, THESIS_TEST_SIZE, thesis_comparison, thesis_result
from lrfp.atomic import atomic_path
from lrfp.errors import BenchError

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
HISTORY_JSONL = "history.jsonl"
PLOTS = ("learning_curves.png", "accuracy_vs_epochs.png", "accuracy_vs_face_size.png")


CHECKPOINTS = "checkpoints"


def archive_previous(out: Path) -> Path | None:
    """Move an earlier benchmark's outputs in `out` to `out/previous-<UTC time>/` (a new one never mixes
    with, or silently deletes, an old one). Returns where they went, or None if there were none.

    Raises BenchError (exit 1) naming the path when one cannot be moved; what was moved is moved back first,
    and the empty previous-* folder removed, so --out is left as it was.
    """
    import datetime as dt

    from benchmark.resume import PLAN_JSON

    ours = [out / n for n in (RESULTS_JSONL, RESULTS_CSV, RESULTS_MD, HISTORY_JSONL, PLAN_JSON, *PLOTS, CHECKPOINTS)]
    present = [p for p in ours if p.exists()]
    if not present:
        return None
    dest = out / f"previous-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')}"
    moved: list[Path] = []
    try:
        dest.mkdir()
        for p in present:
            # a folder's rename rewrites its ".." entry, so a read-only folder cannot move: checked before
            # anything moves, so that nothing is left half-moved
            if p.is_dir() and not os.access(p, os.W_OK):
                raise PermissionError(13, os.strerror(13), str(p))
        for p in present:
            p.rename(dest / p.name)
            moved.append(p)
    except OSError as e:
        for p in reversed(moved):
            with contextlib.suppress(OSError):
                (dest / p.name).rename(p)
        with contextlib.suppress(OSError):
            dest.rmdir()
        raise BenchError(f"cannot move the earlier results in --out {out} to {dest.name}/ "
                         f"({e.filename or dest}: {e.strerror or e}); make it writable, or give another --out") from e
    return dest


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_line(obj: dict[str, Any]) -> str:
    """One row or history entry as a results.jsonl / history.jsonl line (NaN written as null)."""
    return json.dumps({k: _clean(v) for k, v in obj.items()}, default=str) + "\n"


@contextlib.contextmanager
def _writing(path: Path, what: str = "the results file") -> Iterator[None]:
    """Turn an OSError while writing `path` into a BenchError (exit 1) naming it and the reason in words."""
    try:
        yield
    except OSError as e:
        raise BenchError(f"cannot write {what} {e.filename or path}: {e.strerror or e}; make it (and its folder) "
                         "writable, or give another --out") from e


class ResultsWriter:
    """Appends each row the moment it exists (fsynced), so that an interrupted benchmark keeps its rows.

    rows/history: what a resumed benchmark keeps from its earlier session (`benchmark.resume`), written first;
    a new benchmark starts new files. configs: the config names in the plan's order (`--model` order, else the
    registry's). results.jsonl is an append log, in the order runs finished (with --jobs, or resumed, not the
    plan's); `rows`, and so results.csv, results.md and the terminal table, are kept in the plan's order:
    config, then epoch budget, then seed, then eval set (test first) -- see `plan_order`.
    A run's error row replaces the rows it wrote before it failed (a run is a result or a failure, not both).
    Raises BenchError (exit 1) naming the file where one cannot be written.
    """

    def __init__(self, out: Path, rows: list[dict[str, Any]] | None = None,
                 history: list[dict[str, Any]] | None = None, configs: Sequence[str] = ()) -> None:
        self.out = out
        self._key = plan_order(configs)
        self.rows: list[dict[str, Any]] = sorted(rows or [], key=self._key)
        self._log: list[dict[str, Any]] = list(rows or [])  # results.jsonl's rows, in its order
        self.history: list[dict[str, Any]] = list(history or [])
        for name, kept in ((RESULTS_JSONL, self._log), (HISTORY_JSONL, self.history)):
            self._rewrite(out / name, kept)
        if self.rows:
            with _writing(out / RESULTS_CSV):
                write_csv(out / RESULTS_CSV, self.rows)

    @staticmethod
    def _rewrite(path: Path, objs: list[dict[str, Any]]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with _writing(path):
            tmp.write_text("".join(_json_line(obj) for obj in objs))
            os.replace(tmp, path)

    @staticmethod
    def _append(path: Path, obj: dict[str, Any]) -> None:
        with _writing(path), open(path, "a") as fh:
            fh.write(_json_line(obj))
            fh.flush()
            os.fsync(fh.fileno())

    def add_row(self, row: dict[str, Any]) -> None:
        if row.get("error"):  # the run failed: the rows of its earlier budgets go (it is trained again on resume)
            def of_run(r: dict[str, Any]) -> bool:
                return r.get("config") == row.get("config") and r.get("seed") == row.get("seed") and not r.get("error")

            if any(of_run(r) for r in self._log):
                self.rows = [r for r in self.rows if not of_run(r)]
                self._log = [r for r in self._log if not of_run(r)]
                self._rewrite(self.out / RESULTS_JSONL, self._log)
        bisect.insort(self.rows, row, key=self._key)  # after any equal key: a retried run's row after the old one
        self._log.append(row)
        self._append(self.out / RESULTS_JSONL, row)
        with _writing(self.out / RESULTS_CSV):
            write_csv(self.out / RESULTS_CSV, self.rows)

    def add_epoch(self, entry: dict[str, Any]) -> None:
        self.history.append(entry)
        self._append(self.out / HISTORY_JSONL, entry)


def plan_order(configs: Sequence[str] = ()) -> Callable[[dict[str, Any]], tuple[int, int, int, int]]:
    """A sort key putting result rows in the plan's order: config (by its place in `configs`; others after, in
    the order first seen), epoch budget, seed, eval set ("test" first, the --eval-on sets after, first seen)."""
    rank = {c: i for i, c in enumerate(dict.fromkeys(configs))}
    sets = {"test": 0}

    def key(row: dict[str, Any]) -> tuple[int, int, int, int]:
        config = rank.setdefault(str(row.get("config")), len(rank))
        eval_set = sets.setdefault(str(row.get("eval_set")), len(sets))
        return (config, int(row.get("epochs") or 0), int(row.get("seed") or 0), eval_set)

    return key


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """All rows, columns in first-seen order; written to a temporary file and renamed (never half a file)."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: _clean(v) for k, v in r.items()})


def read_jsonl(path: Path, *, skip_bad: bool = False) -> list[dict[str, Any]]:
    """The JSON objects of `path`, one a line ([] if it does not exist). skip_bad: leave out a line that does not
    parse (a crash in the middle of writing it) instead of raising ValueError."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            if skip_bad:
                continue
            raise
        if isinstance(obj, dict) or not skip_bad:
            out.append(obj)
    return out


# -- summary -------------------------------------------------------------------------------------


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per eval set x config x epoch budget: mean and std across seeds, and a 95% interval.

    Order: configs as they first appear in `rows` (a ResultsWriter's rows are in the plan's order), each config's
    budgets ascending, test before the --eval-on sets. The interval is Wilson's at the mean accuracy shown, on the
    test set's n images (`metrics.wilson_ci(mean * n, n)`: the test set's sampling uncertainty; the seeds' spread
    is `accuracy_sd`).
    """
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    configs: dict[str, int] = {}
    sets: dict[str, int] = {"test": 0}
    for r in rows:
        if r.get("error"):
            continue
        key = (r["eval_set"], r["model"], r.get("norm") or "", r["epochs"])
        configs.setdefault(r["config"], len(configs))
        sets.setdefault(r["eval_set"], len(sets))
        cells[key].append(r)
    out = []
    for key in sorted(cells, key=lambda k: (configs[cells[k][0]["config"]], k[3], sets[k[0]])):
        rs = cells[key]
        eval_set, model, norm, epochs = key
        acc, acc_sd = mean_std([r["accuracy"] for r in rs])
        loss, loss_sd = mean_std([r["loss"] for r in rs])
        n = rs[0]["n"]
        lo, hi = wilson_ci(acc * n, n)  # the interval of this mean, not of a rounded count (Python rounds half to even)
        s = {
            "eval_set": eval_set, "model": model, "norm": norm, "config": rs[0]["config"], "epochs": epochs,
            "seeds": len(rs), "accuracy": acc, "accuracy_sd": acc_sd, "acc_ci_low": lo, "acc_ci_high": hi,
            "loss": loss, "loss_sd": loss_sd, "n": n,
            "balanced_accuracy": mean_std([r["balanced_accuracy"] for r in rs])[0],
            "roc_auc": mean_std([r["roc_auc"] for r in rs])[0],
            "train_images_per_s": mean_std([r.get("train_images_per_s") or math.nan for r in rs])[0],
            "train_seconds": mean_std([r.get("train_seconds") or math.nan for r in rs])[0],
            "pretrained": rs[0].get("pretrained"), "input_size": rs[0].get("input_size"),
        }
        for band, _, _ in FACE_BANDS:
            s[f"acc_face_{band}"] = mean_std([r.get(f"acc_face_{band}") for r in rs])[0]
            s[f"n_face_{band}"] = rs[0].get(f"n_face_{band}", 0)
        out.append(s)
    budgets = sorted({s["epochs"] for s in out})
    for s in out:  # the thesis's cell beside ours (thesis_epochs, _accuracy, _loss, _ci_low, _ci_high), if any
        s.update(thesis_comparison(s["model"], s["norm"] or None, s["epochs"], budgets) or {})
    return out


def _epochs(n: int | None) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _weights_line(meta: dict[str, Any]) -> str:
    """Which models ran with ImageNet weights: only those that have any and were not --no-pretrained."""
    used, scratch = meta.get("pretrained"), meta.get("from_scratch") or []
    if isinstance(used, bool):  # meta of an older lrfp
        used = ["yes"] if used else []
    parts = []
    if used:
        parts.append(f"yes for {', '.join(used)}")
    if scratch:
        parts.append(f"NO for {', '.join(scratch)} (--no-pretrained: transfer models trained from scratch)")
    if not parts:
        parts.append("none (the models run have none: trained from scratch, as in the thesis)")
    return "; ".join(parts)


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def _num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def wall_time_words(meta: dict[str, Any]) -> str:
    """The benchmark's training wall time over all its sessions, in words, from meta's `wall_seconds` (this
    session's) and `sessions` (plan.json's record, this session last: `benchmark.resume.session_record`):
    "412 s over 2 sessions (this one: 0 s, trained nothing)"; "38 s, one session"; "at least 412 s over 3
    sessions (1 ended without recording its wall time: killed?; this one: ...)"; "unknown: ..." where an lrfp that
    did not record sessions ran the earlier ones. Whole seconds (rounded)."""
    this = float(meta.get("wall_seconds") or 0)
    sessions = meta.get("sessions") or []
    if not sessions:  # a meta from before sessions were recorded
        return f"{this:.0f} s"
    now = sessions[-1]
    runs, ended = int(now.get("runs") or 0), int(now.get("ended_runs") or 0)
    did = ("trained nothing" if not runs else f"trained {runs} run{'s' if runs != 1 else ''}" if ended == runs
           else f"{ended} of its {runs} runs ended")
    this_one = f"this one: {this:.0f} s, {did}"
    older = any(x.get("unrecorded") for x in sessions)
    recorded = [x for x in sessions if not x.get("unrecorded")]
    known = sum(float(x["wall_seconds"]) for x in recorded if isinstance(x.get("wall_seconds"), (int, float)))
    lost = sum(not isinstance(x.get("wall_seconds"), (int, float)) for x in recorded)
    lost_words = (f"{lost} ended without recording {'its' if lost == 1 else 'their'} wall time: killed?; "
                  if lost else "")
    if older:
        since = (f"; the {len(recorded)} sessions since took {'at least ' if lost else ''}{known:.0f} s"
                 if len(recorded) > 1 else "")
        return (f"unknown: the earlier sessions were run by an lrfp that did not record their wall time{since} "
                f"({lost_words}{this_one})")
    if len(recorded) == 1:
        return f"{this:.0f} s, one session"
    return f"{'at least ' if lost else ''}{known:.0f} s over {len(recorded)} sessions ({lost_words}{this_one})"


def command_time_words(meta: dict[str, Any]) -> str | None:
    """This session's whole time, from the command's start to its report, in words, from meta's
    `command_seconds`: the training wall time (`wall_time_words`) leaves out reading the store, decoding the
    crops, the checks and the precision probe, which dominate a tiny benchmark. None where meta lacks it."""
    whole = meta.get("command_seconds")
    if not isinstance(whole, (int, float)):
        return None
    return (f"{whole:.0f} s from its start to this report ({float(meta.get('wall_seconds') or 0):.0f} s of it "
            "training; the rest reading the split, decoding the crops and checks)")


def render_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """results.md: the run's settings, our test table beside the thesis's, the cross-dataset table, accuracy by
    face size and the failed runs; where no run finished, says so (and why) instead of empty tables."""
    summary = summarize(rows)
    budgets = sorted({s["epochs"] for s in summary})
    errors = [r for r in rows if r.get("error")]
    # what the benchmark planned (meta), else what finished: the text never names a budget that is not there
    run_epochs = meta.get("run_epochs") or (max(budgets) if budgets else None)
    run_budgets = sorted(meta.get("run_budgets") or budgets)
    interrupted = meta.get("interrupted")
    lines = [
        "# lrfp bench results", "",
        f"- protocol: **{meta.get('protocol')}** ({meta.get('protocol_summary', '')})",
        *([f"- this benchmark: {_epochs(meta['run_epochs'])} evaluated at {', '.join(map(str, meta.get('run_budgets', [])))}, "
           f"{meta.get('run_seeds')} seed{'s' if meta.get('run_seeds') != 1 else ''} per config"] if meta.get("run_epochs") else []),
        f"- data: {meta.get('data_kind')} `{meta.get('data')}`; train/validation/test = {meta.get('counts')}",
        f"- leakage audit: {meta.get('audit')}",
        f"- device: {meta.get('device')} ({meta.get('device_name')}), torch {meta.get('torch_version')}, "
        f"threads {meta.get('threads')}, concurrent runs {meta.get('jobs')}, {meta.get('precision')}"
        + (f", freed host memory {meta['cpu_allocator']}" if meta.get("cpu_allocator") else ""),
        f"- pretrained ImageNet weights: {_weights_line(meta)}",
        f"- wall time: {wall_time_words(meta)}"
        + (("; INTERRUPTED: only the finished rows below" if summary else "; INTERRUPTED before any run finished")
           if interrupted else ""),
        *([f"- this command: {command_time_words(meta)}"] if command_time_words(meta) else []),
        *([f"- resumed: {len(meta['resumed_runs'])} run{' was' if len(meta['resumed_runs']) == 1 else 's were'} "
           "finished by an earlier session into this folder and kept"
           + ("; this session trained none and wrote this report again from their rows" if meta.get("trained_runs") == 0
              else "")] if meta.get("resumed_runs") else []),
        "",
    ]
    if not summary:
        why = ("it was interrupted before its first run ended; rerun the same command into this --out to train them"
               if interrupted and not errors else
               f"{'every run that ended failed' if interrupted else 'every run failed'} (the errors are below)"
               if errors else "no run was trained")
        lines += [f"**No run finished: {why}.** There are no accuracies to report.", ""]
        if errors:
            lines += ["## Runs that failed", ""] + [f"- {r['config']} seed {r['seed']}: {r['error']}" for r in errors]
        return "\n".join(lines) + "\n"
    lines += [
        "Accuracy is the mean over seeds ± its standard deviation (the seeds' spread); the 95% interval is Wilson's "
        "at that mean accuracy on this test set's size, its sampling uncertainty (the seeds share the test images, "
        f"so it does not shrink with more seeds; the thesis's intervals use its {THESIS_TEST_SIZE} test images). "
        + (f"Each seed is one {run_epochs}-epoch run evaluated on test after "
           f"{_epochs(run_budgets[-1]) if len(run_budgets) == 1 else ', '.join(map(str, run_budgets)) + ' epochs'}"
           + (": with a constant learning rate that equals separate runs of those lengths." if len(run_budgets) > 1 else ".")
           if run_epochs and run_budgets else ""),
        "",
    ]
    if budgets and any(b not in THESIS_EPOCHS for b in budgets):
        pairs = {s["epochs"]: s["thesis_epochs"] for s in summary if s.get("thesis_epochs")}
        if pairs:
            lines += ["The thesis columns show its budget of the same rank (here "
                      + ", ".join(f"{b} -> {t}" for b, t in sorted(pairs.items()))
                      + " epochs): a reference point, not the same training.", ""]
        else:
            lines += [f"The thesis trained for {', '.join(map(str, THESIS_EPOCHS))} epochs; none matches these budgets, "
                      "so its columns are empty.", ""]
    lines += [
        "| model | norm | epochs | seeds | test accuracy | 95% CI | test loss | balanced acc | ROC AUC | train img/s "
        "| thesis acc / loss | thesis 95% CI |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in [s for s in summary if s["eval_set"] == "test"]:
        norm = s["norm"] or None
        if s.get("thesis_epochs"):
            th_txt = f"{100 * s['thesis_accuracy']:.2f}% / {s['thesis_loss']:.4f} (@{s['thesis_epochs']})"
            th_ci = f"[{100 * s['thesis_ci_low']:.1f}, {100 * s['thesis_ci_high']:.1f}]"
        else:
            th_txt = th_ci = "-"
        sd = f" ± {100 * s['accuracy_sd']:.2f}" if s["seeds"] > 1 else ""
        lines.append(
            f"| {s['model']} | {NORM_NAMES.get(norm, norm)} | {s['epochs']} | {s['seeds']} | {_pct(s['accuracy'])}{sd} "
            f"| [{100 * s['acc_ci_low']:.1f}, {100 * s['acc_ci_high']:.1f}] | {_num(s['loss'])} "
            f"| {_pct(s['balanced_accuracy'])} | {_num(s['roc_auc'], 3)} | {_num(s['train_images_per_s'], 0)} "
            f"| {th_txt} | {th_ci} |"
        )
    cross = [s for s in summary if s["eval_set"] != "test"]
    if cross:
        from benchmark.overlap import overlap_warning

        lines += ["", "## Cross-dataset check (`--eval-on`)", ""]
        for name, info in (meta.get("eval_overlap") or {}).items():
            if (warning := overlap_warning(name, info)):  # eval images that are also in train/validation/test
                lines += [f"**Warning: {warning}.**", ""]
        for name, skipped in (meta.get("eval_skipped") or {}).items():
            lines += [f"{len(skipped)} unreadable image{'s' if len(skipped) != 1 else ''} of {name} left out "
                      "(not evaluated):", ""] + [f"- `{f}`: {why}" for f, why in skipped] + [""]
        lines += ["| eval set | model | norm | epochs | seeds | accuracy | 95% CI | loss |", "|---|---|---|---|---|---|---|---|"]
        for s in cross:
            lines.append(
                f"| {s['eval_set']} | {s['model']} | {NORM_NAMES.get(s['norm'] or None, s['norm'])} | {s['epochs']} "
                f"| {s['seeds']} | {_pct(s['accuracy'])} | [{100 * s['acc_ci_low']:.1f}, {100 * s['acc_ci_high']:.1f}] "
                f"| {_num(s['loss'])} |"
            )
    last = max(budgets)
    bands = [b for b, _, _ in FACE_BANDS]
    lines += ["", f"## Test accuracy by face size (shorter side, px) after {_epochs(last)}", "",
              "| config | " + " | ".join(bands) + " |", "|---|" + "---|" * len(bands)]
    for s in [s for s in summary if s["eval_set"] == "test" and s["epochs"] == last]:
        cells = [f"{_pct(s[f'acc_face_{b}'])} (n={s[f'n_face_{b}']})" if s[f"n_face_{b}"] else "-" for b in bands]
        lines.append(f"| {s['config']} | " + " | ".join(cells) + " |")
    if errors:
        lines += ["", "## Runs that failed", ""] + [f"- {r['config']} seed {r['seed']}: {r['error']}" for r in errors]
    return "\n".join(lines) + "\n"


def write_markdown(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """results.md; raises BenchError (exit 1) naming it where it cannot be written."""
    path = out / RESULTS_MD
    with _writing(path), atomic_path(path) as tmp:  # never half a results.md (a full disk, Ctrl-C)
        tmp.write_text(render_markdown(rows, meta))
    return path


# -- plots ---------------------------------------------------------------------------------------


def write_plots(out: Path, rows: list[dict[str, Any]], history: list[dict[str, Any]]) -> list[Path]:
    """The three PNGs (Agg backend, no display needed); a plot with no data is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    summary = [s for s in summarize(rows) if s["eval_set"] == "test"]
    # panels in the plan's order (the rows'), then any config with history but no row yet (cut short)
    configs = list(dict.fromkeys([s["config"] for s in summary] + [h["config"] for h in history]))
    if configs:
        cols = min(4, len(configs))
        nrows = math.ceil(len(configs) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
        for ax, config in zip(axes.flat, configs):
            by_epoch: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for h in history:
                if h["config"] == config:
                    by_epoch[h["epoch"]].append(h)
            epochs = sorted(by_epoch)
            acc_ax = ax.twinx()
            for key, style, axis in (("train_loss", "C0-", ax), ("val_loss", "C1-", ax),
                                     ("train_accuracy", "C0--", acc_ax), ("val_accuracy", "C1--", acc_ax)):
                axis.plot(epochs, [mean_std([h[key] for h in by_epoch[e]])[0] for e in epochs], style, label=key)
            ax.set_title(config, fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss (solid)")
            acc_ax.set_ylabel("accuracy (dashed)")
            acc_ax.set_ylim(0, 1)
        for ax in list(axes.flat)[len(configs):]:
            ax.axis("off")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color="C0", label="train"), Line2D([], [], color="C1", label="validation"),
                   Line2D([], [], color="k", label="loss (left axis)"),
                   Line2D([], [], color="k", linestyle="--", label="accuracy (right axis)")]
        fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        path = out / PLOTS[0]
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90)
        plt.close(fig)
        written.append(path)
    if summary:
        fig, ax = plt.subplots(figsize=(8, 5))
        for i, config in enumerate(dict.fromkeys(s["config"] for s in summary)):
            ss = sorted((s for s in summary if s["config"] == config), key=lambda s: s["epochs"])
            color = f"C{i % 10}"
            ax.errorbar([s["epochs"] for s in ss], [s["accuracy"] for s in ss], yerr=[s["accuracy_sd"] for s in ss],
                        marker="o", color=color, label=config, capsize=3)
            th = [(e, thesis_result(ss[0]["model"], ss[0]["norm"] or None, e)) for e in THESIS_EPOCHS]
            if all(s["epochs"] in THESIS_EPOCHS for s in ss):
                ax.plot([e for e, t in th if t], [t[0] for e, t in th if t], "x", color=color)
        ax.set_xlabel("epochs")
        ax.set_ylabel("test accuracy (x: thesis)")
        ax.set_ylim(0.4, 1.0)
        written.append(_save(fig, ax, out / PLOTS[1]))

        last = max(s["epochs"] for s in summary)
        final = [s for s in summary if s["epochs"] == last]
        bands = [b for b, _, _ in FACE_BANDS if any(s[f"n_face_{b}"] for s in final)]
        if bands:
            fig, ax = plt.subplots(figsize=(8, 5))
            for i, s in enumerate(final):
                ax.plot(bands, [s[f"acc_face_{b}"] for b in bands], marker="o", color=f"C{i % 10}", label=s["config"])
            ax.set_xticks(range(len(bands)), [f"{b}\n(n={final[0][f'n_face_{b}']})" for b in bands])
            ax.set_xlabel("face size: shorter side of the face box, or of the crop for imported images (px)")
            ax.set_ylabel(f"test accuracy after {_epochs(last)}")
            ax.set_ylim(0.4, 1.0)
            written.append(_save(fig, ax, out / PLOTS[2]))
    return written


def _save(fig, ax, path: Path) -> Path:
    """Finish a plot the same way everywhere (legend, grid, layout), write it, free it."""
    import matplotlib.pyplot as plt

    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return path
