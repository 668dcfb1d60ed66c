"""`lrfp models`: the face-detector model files (BlazeFace) that `lrfp fetch` needs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage the face-detector model files (BlazeFace .tflite) used by `lrfp fetch`.", no_args_is_help=True)


@app.command("pull")
def pull() -> None:
    """Obtain the BlazeFace models into lrfp's user cache (sha256 checked).

    Example:
      lrfp models pull
    """
    from lrfp.errors import LrfpError

    raise LrfpError("`lrfp models pull` is not built yet (issue: fetch)")
