"""The `lrfp` command line: a Typer app, one module per command, errors translated in `main()`."""

from __future__ import annotations

import logging
import os
import sys

import typer
from typer.exceptions import TyperException

from lrfp import __version__
from lrfp.errors import LrfpError

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
    from lrfp.cli import bench, fetch, import_, label, models, publish, review_labels, split, stats

    app.command("fetch")(fetch.fetch)
    app.command("label")(label.label)
    app.command("split")(split.split)
    app.command("publish")(publish.publish)
    app.command("bench")(bench.bench)
    app.command("import")(import_.import_)
    app.command("stats")(stats.stats)
    app.command("review-labels")(review_labels.review_labels)
    app.add_typer(models.app, name="models")


_register()


INTERRUPTED = "Interrupted: what was stored stays; rerun the same command to finish."


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns LrfpError into `Error: <message>` and an exit code."""
    debug = os.environ.get("LRFP_DEBUG") == "1"
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="lrfp")
    except LrfpError as e:
        if debug:
            raise
        typer.echo(f"Error: {e}", err=True)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except TyperException as e:  # usage errors: typer's (vendored click) exceptions know how to show themselves
        e.show()
        sys.exit(getattr(e, "exit_code", 2))
    except Exception as e:  # an lrfp bug: say so briefly, full traceback only on request
        if debug:
            raise
        typer.echo(f"Error: unexpected {type(e).__name__}: {e} (rerun with LRFP_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
    if rv == 130:  # typer turns Ctrl-C inside a command into exit code 130
        typer.echo(INTERRUPTED, err=True)
    sys.exit(rv if isinstance(rv, int) else 0)
