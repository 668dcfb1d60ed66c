"""`lrfp models`: the face-detector model files (BlazeFace) that `lrfp fetch` needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Manage the face-detector model files (BlazeFace .tflite) used by `lrfp fetch`.", no_args_is_help=True)


@app.command("pull")
def pull(
    dest: Annotated[
        Optional[Path], typer.Option("--dest", help="Folder to put the models in (default: lrfp's user cache).", file_okay=False)
    ] = None,
) -> None:
    """Obtain the BlazeFace models into lrfp's user cache (sha256 checked).

    They are read out of the mediapipe==0.10.21 wheel, which `pip download` fetches from PyPI
    (your pip configuration applies). Files already present and valid are kept.

    Example:
      lrfp models pull
    """
    from lrfp.cli.console import err, out
    from lrfp.fetch.models import MODELS, pull_models, user_cache_dir

    target = dest or user_cache_dir()
    with err.status(f"obtaining the models into {target} (pip download of the mediapipe 0.10.21 wheel)"):
        paths = pull_models(target)
    for model, path in zip(MODELS.values(), paths):
        out.print(f"{model.name}: {path}  sha256 {model.sha256[:12]}... ok", soft_wrap=True)


@app.command("list")
def list_(
    models_dir: Annotated[Optional[Path], typer.Option("--models-dir", help="Also look in this folder first.")] = None,
) -> None:
    """Show each detector model and where `lrfp fetch` would find it.

    Example:
      lrfp models list --models-dir ../shared/models
    """
    from lrfp.cli.console import out
    from lrfp.fetch.models import MODELS, find_model, search_dirs

    for name, model in MODELS.items():
        found = find_model(name, models_dir)
        where = str(found) if found else "missing (run `lrfp models pull`)"
        out.print(f"{name}: {model.filename}  {where}\n  {model.description}", soft_wrap=True)
    out.print("searched: " + ", ".join(f"{p} ({why})" for why, p in search_dirs(models_dir)), soft_wrap=True)
