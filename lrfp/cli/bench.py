"""`lrfp bench`: train and evaluate the thesis's six baselines."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Callable, Iterator, Optional

import typer

from lrfp import interrupts
from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, SplitName


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
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Folder for results.csv/jsonl/md, plots and checkpoints (created if missing).")] = "bench-results",
    list_: Annotated[bool, typer.Option("--list", help="List the registered models and exit.")] = False,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Train the transfer models from scratch (no ImageNet weights; recorded in the results).")] = False,
    input_size: Annotated[Optional[int], typer.Option("--input-size", help="Override every model's input side in px.")] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Runs at once (default: 3 on CUDA, 1 on CPU).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Override the protocol's batch size (64).")] = None,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 autocast + channels-last on CUDA; on a CPU per config, where a short cached timing probe finds it >= 10% faster), bf16 or fp32. The chosen one is in the results.")] = "auto",
    compile_: Annotated[str, typer.Option("--compile", help="off, default or reduce-overhead (torch.compile of the training step; reduce-overhead adds CUDA graphs). Opt-in: not yet measured on a GPU.")] = "off",
    stack_seeds: Annotated[bool, typer.Option("--stack-seeds", help="Train each config's seeds as one stacked model (torch.func; equal to separate runs up to float rounding; not for VGG-16/AlexNet, whose Dropout differs). Opt-in: not yet measured on a GPU, slower on a CPU.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new benchmark even where --out holds one of the same settings (by default a rerun of the same command trains only the runs it did not finish, and nothing where every run finished). The earlier results move to --out/previous-<time>/.")] = False,
    cuda_graph: Annotated[bool, typer.Option("--cuda-graph", help="Replay each training step as a CUDA graph (one launch instead of hundreds; for the small models that leave a GPU idle). CUDA only. Opt-in: not yet measured on a GPU.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Train and evaluate the six baselines on a split and report them beside the thesis.

    Writes results.csv, results.jsonl, results.md, PNG plots and the best checkpoint per model to --out.
    Rerunning an interrupted command (Ctrl-C, SIGTERM, a crash) into the same --out trains only the runs it did
    not finish, and tries failed runs again; where every run finished it trains nothing; --fresh starts over.
    Exits 1 after the table if any run failed, 2 for options that cannot work, 130 on Ctrl-C and 143 on SIGTERM
    (what finished is kept; the same command resumes).

    Example:
      lrfp bench --all --protocol quick
    """
    from lrfp.cli import tables
    from lrfp.cli.console import out as console
    from lrfp.errors import BenchError, UsageError

    if list_:
        from benchmark.registry import get_spec, list_models

        console.print(tables.bench_models_table([get_spec(n) for n in list_models()]))
        return
    if not all_models and not model:
        raise UsageError("name the models: --model NAME (repeatable) or --all; --list shows them")
    if all_models and model:
        raise UsageError(f"--all runs every model, --model {' --model '.join(model)} only some: give one of them")
    from benchmark.harness import BenchConfig, run_bench
    from benchmark.report import command_time_words, wall_time_words

    cfg = BenchConfig(
        data_dir=data_dir, out=out, models=() if all_models else tuple(model or ()), protocol=protocol,
        epochs=epochs, seeds=seeds, device=device, threads=threads, split=split, dataset=dataset, eval_on=eval_on,
        pretrained=not no_pretrained, input_size=input_size, jobs=jobs, batch_size=batch_size, precision=precision,
        compile=compile_, stack_seeds=stack_seeds, cuda_graph=cuda_graph, fresh=fresh,
    )
    from lrfp.cli import on_interrupt_say

    if fresh:  # on Ctrl-C (or SIGTERM: main() raises it as Ctrl-C) the same command would start over again
        on_interrupt_say("Interrupted: what was stored stays; rerun the command without --fresh to finish.")
    with _progress() as on_event:
        result = run_bench(cfg, on_event=on_event)
        interrupts.work_done()  # stored: a signal now would only cut the summary short
    console.print(tables.bench_header(result.meta, result.summary), soft_wrap=True)
    console.print(tables.bench_summary_table(result.summary, result.rows))  # piped: never wrapped (cli/console.py)
    for line in tables.bench_failures(result.rows):  # whole, at any width: soft_wrap folds nothing away
        console.print(line, soft_wrap=True, markup=False)
    console.print(f"Wall time: {wall_time_words(result.meta)}", soft_wrap=True, markup=False)  # all its sessions
    if (whole := command_time_words(result.meta)) is not None:
        console.print(f"This command: {whole}", soft_wrap=True, markup=False)
    console.print(f"Results in {result.out}: " + ", ".join(p.name for p in result.files), soft_wrap=True)
    if result.meta.get("previous_results"):
        why = result.meta.get("previous_reason")
        console.print(f"The earlier results there were moved to {result.meta['previous_results']}"
                      + (f" ({why})" if why else ""), soft_wrap=True)
    if result.failed:
        raise BenchError(f"{len(result.failed)} of {len(result.rows)} result rows are failed runs (see the table "
                         f"and {result.out / 'results.md'})")


# -- progress display (the work is in benchmark.harness) -----------------------------------------


def precision_line(event: Any) -> str:
    """What `--precision auto` chose for a config and why: the timings, or why the probe failed and the fallback."""
    head = f"precision {event.config} @{event.input_size}px: "
    if event.error or event.fp32_ms is None or event.bf16_ms is None:
        return head + f"fp32, the fallback: the timing probe failed ({event.error or 'no timing'})"
    return (head + f"{'bf16' if event.bf16 else 'fp32'} (a step: fp32 {event.fp32_ms:.0f} ms, bf16 {event.bf16_ms:.0f} ms"
            f"{', cached' if event.cached else ''})")


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[Any], None]]:
    from benchmark.events import (DecodeProgress, EpochDone, EvalOverlap, GridFinished, GridPlanned, GridResumed, Notice,
                                  PrecisionChosen, PreviousMoved)
    from lrfp.cli.console import err
    from lrfp.cli.progress import make_progress

    with make_progress() as progress:
        tasks: dict[str, Any] = {}

        def on_event(event: Any) -> None:
            if isinstance(event, DecodeProgress):
                if "load" not in tasks:
                    tasks["load"] = progress.add_task("decode images", total=event.total)
                progress.update(tasks["load"], completed=event.done, total=event.total)
            elif isinstance(event, PrecisionChosen):
                err.print(precision_line(event), soft_wrap=True, markup=False)
            elif isinstance(event, EvalOverlap):
                from rich.markup import escape

                err.print(f"[bold red]Warning:[/bold red] {escape(event.warning)}", soft_wrap=True)
            elif isinstance(event, PreviousMoved):
                from rich.markup import escape

                err.print(escape(f"A new benchmark: {event.reason + '; ' if event.reason else ''}the earlier results in "
                                 f"this --out were moved to {event.path}"), soft_wrap=True)
            elif isinstance(event, GridFinished):
                from rich.markup import escape

                err.print(escape(f"Every run of this benchmark has finished ({event.total} run"
                                 f"{'s' if event.total != 1 else ''}): results in {event.results}; --fresh trains it "
                                 "again"), soft_wrap=True)
            elif isinstance(event, Notice):
                err.print(f"Note: {event.text}", soft_wrap=True)
            elif isinstance(event, GridResumed):
                err.print(f"Resuming the unfinished benchmark in this --out: {len(event.done)} of {event.total} runs "
                          "are already finished and kept (--fresh starts over)", soft_wrap=True)
            elif isinstance(event, GridPlanned):
                tasks["train"] = progress.add_task(
                    f"train {len(event.runs)} runs on {event.device_name}", total=event.total_epochs
                )
            elif isinstance(event, EpochDone) and "train" in tasks:
                e = event.entry
                progress.update(
                    tasks["train"], advance=1,
                    description=f"{e['run']} epoch {e['epoch']}/{e['epochs']} val acc {100 * e['val_accuracy']:.1f}%",
                )

        yield on_event
