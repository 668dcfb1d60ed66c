"""`lrfp bench`: train and evaluate the thesis's six baselines."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, Optional

import typer
from rich.table import Table

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, SplitName

if TYPE_CHECKING:
    from benchmark.harness import BenchResult


def bench(
    all_models: Annotated[bool, typer.Option("--all", help="Every registered model (the thesis's six baselines, all norms).")] = False,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="A model to run (repeatable); see --list.")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="thesis (80 epochs evaluated at 30/50/80, 3 seeds) or quick (CPU-sized).")] = "thesis",
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Train this many epochs (evaluated at the protocol's budgets below it, and at it).")] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Seeds per configuration (default: thesis 3, quick 1).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch.")] = None,
    split: SplitName = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Benchmark a dataset written by `lrfp publish` (folder or Hub repo id) instead of the store.")] = None,
    eval_on: Annotated[Optional[str], typer.Option("--eval-on", help="Also evaluate on this labeled folder (with_mask/, without_mask/) or published dataset.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Folder for results.csv/jsonl/md, plots and checkpoints.")] = Path("bench-results"),
    list_: Annotated[bool, typer.Option("--list", help="List the registered models and exit.")] = False,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Train the transfer models from scratch (no ImageNet weights; recorded in the results).")] = False,
    input_size: Annotated[Optional[int], typer.Option("--input-size", help="Override every model's input side in px.")] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Runs at once (default: 3 on CUDA, 1 on CPU).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Override the protocol's batch size (64).")] = None,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 autocast + channels-last on CUDA and on CPUs with AMX, else fp32), bf16 or fp32. The chosen one is in the results.")] = "auto",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Train and evaluate the six baselines on a split and report them beside the thesis.

    Writes results.csv, results.jsonl, results.md, PNG plots and the best checkpoint per model to --out.

    Example:
      lrfp bench --all --protocol quick
    """
    from lrfp.cli.console import out as console
    from lrfp.errors import UsageError

    if list_:
        console.print(_models_table())
        return
    if not all_models and not model:
        raise UsageError("name the models: --model NAME (repeatable) or --all; --list shows them")
    from benchmark.harness import BenchConfig, run_bench
    cfg = BenchConfig(
        data_dir=data_dir, out=out, models=() if all_models else tuple(model or ()), protocol=protocol,
        epochs=epochs, seeds=seeds, device=device, threads=threads, split=split, dataset=dataset, eval_on=eval_on,
        pretrained=not no_pretrained, input_size=input_size, jobs=jobs, batch_size=batch_size, precision=precision,
    )
    with _progress() as on_event:
        result = run_bench(cfg, on_event=on_event)
    console.print(_summary_table(result))
    console.print(f"Results in {result.out}: " + ", ".join(p.name for p in result.files))
    if result.meta.get("previous_results"):
        console.print(f"The earlier results there were moved to {result.meta['previous_results']}")


# -- presentation only (the work is in benchmark.harness) ----------------------------------------


def _models_table() -> Table:
    from benchmark.registry import get_spec, list_models

    t = Table(title="registered models (lrfp bench --model NAME)", title_justify="left")
    for col in ("model", "norms", "input px thesis/quick/min", "optimizer", "weights"):
        t.add_column(col, no_wrap=True)
    t.add_column("what")
    for name in list_models():
        s = get_spec(name)
        t.add_row(name, ", ".join(s.norms) or "-", f"{s.input_size} / {s.quick_input_size} / {s.min_input_size}",
                  s.optimizer, "ImageNet" if s.pretrained else "scratch", s.summary)
    return t


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[str, dict[str, Any]], None]]:
    from lrfp.cli.progress import make_progress

    with make_progress() as progress:
        tasks: dict[str, Any] = {}

        def on_event(kind: str, payload: dict[str, Any]) -> None:
            if kind == "load":
                if "load" not in tasks:
                    tasks["load"] = progress.add_task("decode images", total=payload["total"])
                progress.update(tasks["load"], completed=payload["done"], total=payload["total"])
            elif kind == "plan":
                tasks["train"] = progress.add_task(
                    f"train {len(payload['runs'])} runs on {payload['device_name']}", total=payload["total_epochs"]
                )
            elif kind == "epoch" and "train" in tasks:
                progress.update(
                    tasks["train"], advance=1,
                    description=f"{payload['run']} epoch {payload['epoch']}/{payload['epochs']} "
                    f"val acc {100 * payload['val_accuracy']:.1f}%",
                )

        yield on_event


def _summary_table(result: "BenchResult") -> Table:
    from benchmark.report import thesis_epochs_for
    from benchmark.thesis import thesis_result

    from rich import box

    meta = result.meta
    summary = [s for s in result.summary if s["eval_set"] == "test"]
    seeds = sorted({s["seeds"] for s in summary})
    t = Table(
        title=f"lrfp bench: protocol {meta.get('protocol')}, {', '.join(map(str, seeds)) or 0} seed(s), "
        f"{meta.get('device_name')}" + ("" if meta.get("pretrained") else ", NO pretrained weights"),
        title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
    )
    for col in ("config", "ep", "test acc", "95% CI", "loss", "AUC", "thesis acc/loss"):
        t.add_column(col, justify="left" if col == "config" else "right", no_wrap=True)
    budgets = sorted({s["epochs"] for s in summary})
    for s in summary:
        te = thesis_epochs_for(s["epochs"], budgets)
        th = thesis_result(s["model"], s["norm"] or None, te) if te else None
        sd = f"±{100 * s['accuracy_sd']:.1f}" if s["seeds"] > 1 else ""
        t.add_row(
            s["config"], str(s["epochs"]), f"{100 * s['accuracy']:.1f}%{sd}",
            f"{100 * s['acc_ci_low']:.1f}-{100 * s['acc_ci_high']:.1f}", f"{s['loss']:.3f}", f"{s['roc_auc']:.3f}",
            f"{100 * th[0]:.1f}%/{th[1]:.2f}@{te}" if th else "-",
        )
    errors = [r for r in result.rows if r.get("error")]
    for r in errors:
        t.add_row(r["config"], "-", "[red]failed[/red]", r["error"][:40], "", "", f"seed {r['seed']}")
    return t
