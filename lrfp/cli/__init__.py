"""The `lrfp` command line: a Typer app, one module per command, errors translated in `main()`."""

from __future__ import annotations

import logging
import os
import sys

import typer
from typer.exceptions import TyperException

from lrfp import __version__, interrupts
from lrfp.errors import DiskFullError, LrfpError, disk_full, disk_full_path, exception_chain
from lrfp.interrupts import Terminated, sigterm_as_interrupt  # noqa: F401 - the names commands and tests use

app = typer.Typer(
    name="lrfp",
    help=(
        "Build and benchmark low-resolution face-mask datasets from street video.\n\n"
        "The pipeline: fetch -> label -> split -> publish, and bench for the six baselines. "
        "Every command works on one data directory (--data-dir, env LRFP_DATA_DIR, default ./lrfp-data)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lrfp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what the library does (to stderr)."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _register() -> None:
    # Command modules import only typer/rich at module level; their heavy imports live in the bodies.
    from lrfp.cli import bench, fetch, import_, label, models, predict, publish, review_labels, split, stats

    app.command("fetch")(fetch.fetch)
    app.command("label")(label.label)
    app.command("split")(split.split)
    app.command("publish")(publish.publish)
    app.command("bench")(bench.bench)
    app.command("import")(import_.import_)
    app.command("stats")(stats.stats)
    app.command("predict")(predict.predict)
    app.command("export")(predict.export)
    app.command("review-labels")(review_labels.review_labels)
    app.add_typer(models.app, name="models")


_register()


def _hide_flag_types(cmd) -> None:  # noqa: ANN001 - a click Command or Group
    """Flags take no value: show no type after them in --help (typer shows `<bool>` as if they took one)."""
    for param in cmd.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    make_help = cmd.get_help_option  # -h/--help is made per call, outside cmd.params

    def get_help_option(ctx, _make=make_help):  # noqa: ANN001, ANN202
        option = _make(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    cmd.get_help_option = get_help_option
    for sub in getattr(cmd, "commands", {}).values():
        _hide_flag_types(sub)


def reflow(text: str | None) -> str | None:
    """A command's help with each prose paragraph on one line, for the terminal to wrap at its own width (typer's
    rich mode keeps a docstring's line breaks, so a paragraph broken at ~110 columns came out ragged at 80).
    Paragraphs whose lines are indented (the `Example:` blocks) keep their lines."""
    if not text:
        return text
    paragraphs = []
    for para in text.split("\n\n"):
        lines = para.split("\n")
        if any(line.startswith(" ") for line in lines[1:]) or lines[0].rstrip().endswith(":"):
            paragraphs.append(para)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def _reflow_help(cmd) -> None:  # noqa: ANN001 - a click Command or Group
    cmd.help = reflow(cmd.help)
    for sub in getattr(cmd, "commands", {}).values():
        _reflow_help(sub)


def command():  # noqa: ANN201 - the click command `lrfp` runs
    """The click command tree of `app`, with every command's flags shown without a value type and its help's
    paragraphs wrapped at the terminal's width."""
    import typer.main

    cmd = typer.main.get_command(app)
    _hide_flag_types(cmd)
    _reflow_help(cmd)
    return cmd


def refuse_conflicting_repeats(cmd, args: list[str]) -> None:  # noqa: ANN001 - the click command tree
    """Refuse a single-value option given twice with different values (click keeps the last one silently).

    `--max-side 32 --max-side 48` or `--shuffle --no-shuffle` is a mistake whichever value was meant;
    repeating the same value is harmless. Repeatable options (--map) check their own conflicts.
    Raises UsageError (exit 2) naming the option and both values.
    """
    from lrfp.errors import UsageError

    # Typer vendors its own click: test by what the objects have, not by click's classes.
    i = 0
    while hasattr(cmd, "commands") and i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("-"):
            sub = cmd.commands.get(token)
            if sub is None:
                return  # click reports the unknown command
            cmd = sub
    options: dict[str, object] = {}
    for param in cmd.params:
        if getattr(param, "param_type_name", "") == "option":
            for name in (*param.opts, *param.secondary_opts):
                options[name] = param
    seen: dict[str, tuple[str, object]] = {}
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            break
        name, _, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        param = options.get(name)
        if param is None:
            continue
        if param.is_flag or param.count:
            value: object = name not in param.secondary_opts
        elif inline or "=" in token:
            value = inline
        else:
            value = args[i] if i < len(args) else None
            i += 1
        if param.multiple or param.count:
            continue
        if param.name in seen and seen[param.name][1] != value:
            first, before = seen[param.name]
            shown = [first if isinstance(before, bool) else f"{first} {before}", name if isinstance(value, bool) else f"{name} {value}"]
            raise UsageError(f"{shown[0]} and {shown[1]} contradict each other: give the option once")
        seen.setdefault(param.name, (name, value))


def refuse_empty_paths(cmd, args: list[str]) -> None:  # noqa: ANN001 - the click command tree
    """Refuse a path option given as "" (`--out ""`, `-d ""`): click reads it as the current folder and a command
    would write there silently. Raises UsageError (exit 2) naming the option. (Options typed as text, such as
    `lrfp bench --out`, check their own value.)"""
    from lrfp.errors import UsageError

    while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
        cmd = cmd.commands.get(args[0])
        args = args[1:]
        if cmd is None:
            return
    paths = {name: param for param in getattr(cmd, "params", [])
             if getattr(param, "param_type_name", "") == "option" and _is_path(param) for name in param.opts}
    for i, token in enumerate(args):
        if token == "--":
            return
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in paths and ((eq and not inline.strip()) or (not eq and i + 1 < len(args) and not args[i + 1].strip())):
            raise UsageError(f"{name} is empty: give a path (\".\" for the current folder)")


def _is_path(param) -> bool:  # noqa: ANN001 - an option of the command tree
    """Whether the option's value is a Path (or an optional one): by its annotation, where typer keeps it."""
    import typing
    from pathlib import Path

    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return annotation is Path or Path in typing.get_args(annotation)


INTERRUPTED = "Interrupted: what was stored stays; rerun the same command to finish."
_on_interrupt = [INTERRUPTED]
SIGTERM_EXIT = 143  # 128 + 15: what a shell reports for a process that SIGTERM ended


def on_interrupt_say(message: str) -> None:
    """What a command wants said on Ctrl-C instead of INTERRUPTED (e.g. how to finish where the same command
    would not); the last call wins."""
    _on_interrupt[-1] = message


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns LrfpError into `Error: <message>` and an exit code.

    argv None: the process's own arguments, as the `lrfp` program (a signal during the interpreter's shutdown
    then changes nothing: `interrupts.ignore_signals_from_now`); a list: called from Python (tests).
    """
    debug = os.environ.get("LRFP_DEBUG") == "1"
    _on_interrupt[-1] = INTERRUPTED
    interrupts.reset()
    code = _run(argv, debug)
    if argv is None:
        interrupts.ignore_signals_from_now()
    sys.exit(code)


def _run(argv: list[str] | None, debug: bool) -> int:
    """The command's exit code: its own, or that of the error or interruption it ended with (said on stderr)."""
    try:
        cmd = command()
        refuse_conflicting_repeats(cmd, list(sys.argv[1:] if argv is None else argv))
        refuse_empty_paths(cmd, list(sys.argv[1:] if argv is None else argv))
        # SIGTERM (kill, timeout, a scheduler's pre-emption) stops every command as Ctrl-C does: what was stored
        # stays, and the command's own interruption message is shown (a command may stop more gently on it:
        # interrupts.first_signal_stops).
        with interrupts.sigterm_as_interrupt(), interrupts.keep_sigint_handler():
            rv = cmd(args=argv, standalone_mode=False, prog_name="lrfp")
    except LrfpError as e:
        if debug:
            raise
        if "is full" not in str(e) and disk_full(e.__cause__ or e.__context__):
            e = _disk_full_error(e, argv)  # e.g. "--out cannot be created (No space left...)": not bad input
        typer.echo(f"Error: {e}", err=True)
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _say_interrupted()
    except TyperException as e:  # usage errors: typer's (vendored click) exceptions know how to show themselves
        e.show()
        return getattr(e, "exit_code", 2)
    except Exception as e:  # an lrfp bug: say so briefly, full traceback only on request
        if debug:
            raise
        if disk_full(e):  # any command, anywhere: the disk, not lrfp, stopped it
            full = _disk_full_error(e, argv)
            typer.echo(f"Error: {full}", err=True)
            return full.exit_code
        typer.echo(f"Error: unexpected {type(e).__name__}: {e} (rerun with LRFP_DEBUG=1 for the traceback)", err=True)
        return 1
    if rv == 130:  # typer turns Ctrl-C (and Terminated) inside a command into exit code 130; a command stopped by
        # a signal (interrupts.first_signal_stops) exits 130 too, and interrupts.terminated() tells which signal
        return _say_interrupted()
    return rv if isinstance(rv, int) else 0


def _disk_full_error(e: BaseException, argv: list[str] | None) -> DiskFullError:
    """The DiskFullError for `e` (a full disk in its chain), naming the file the OS named, else the folder the
    command writes in: the store (-d) for SQLite's "database or disk is full", else --out (or --video-out)."""
    import sqlite3

    path = disk_full_path(e)
    params = _command_params(list(sys.argv[1:] if argv is None else argv))
    sqlite = any(isinstance(x, sqlite3.Error) for x in exception_chain(e))
    if path is None:
        order = ("data_dir", "out", "video_out") if sqlite else ("out", "video_out", "data_dir")
        path = next((str(params[k]) for k in order if params.get(k) not in (None, "")), None)
    return DiskFullError(path, store=sqlite or _in_store(path, params.get("data_dir")))


def _in_store(path: str | None, data_dir: object) -> bool:
    """Whether `path` is the data directory `data_dir` or inside it (else an output file: --out, --video-out);
    True when either is unknown (the store is what most commands write)."""
    if path is None or data_dir in (None, ""):
        return True
    from pathlib import Path

    store, p = Path(str(data_dir)).expanduser().absolute(), Path(path).expanduser().absolute()
    return p == store or store in p.parents


def _command_params(args: list[str]) -> dict:
    """The option values of the command `args` run (click's own parsing, without running it); {} if they cannot be
    parsed."""
    try:
        cmd, name = command(), "lrfp"
        while hasattr(cmd, "commands") and args and args[0] in cmd.commands:
            name, args = args[0], args[1:]
            cmd = cmd.commands[name]
        with cmd.make_context(name, list(args), resilient_parsing=True) as ctx:
            return dict(ctx.params)
    except Exception:  # noqa: BLE001 - only a better message is lost
        return {}


def _say_interrupted() -> int:
    """Print what an interrupted command leaves and how to finish it; the exit code (130 Ctrl-C, 143 SIGTERM)."""
    message = _on_interrupt[-1]
    if interrupts.terminated():
        message = message.replace("Interrupted:", "Terminated (SIGTERM):", 1)
    typer.echo(message, err=True)
    return SIGTERM_EXIT if interrupts.terminated() else 130
