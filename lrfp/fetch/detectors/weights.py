"""Find the BlazeFace weight files (sha256 checked), or obtain them from the mediapipe==0.10.21 wheel on PyPI."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lrfp.errors import ModelsError
from lrfp.paths import file_sha256

log = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "mediapipe==0.10.21"
# The wheel named in ../shared/models/SOURCE.md. Any platform's wheel holds the same .tflite files;
# pinning one makes `pip download` work from any machine and Python.
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
WHEEL_PYTHON = "3.11"
WHEEL_MEMBER_DIR = "mediapipe/modules/face_detection"
ENV_MODELS_DIR = "LRFP_MODELS_DIR"


@dataclass(frozen=True)
class ModelFile:
    name: str  # short name used by `--model`
    filename: str
    sha256: str
    size: int
    description: str


MODELS: dict[str, ModelFile] = {
    "full": ModelFile(
        "full", "face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1", 676_746,
        "BlazeFace full range (sparse), 192x192 input: small and distant faces (down to ~20-32 px)",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    model: ModelFile
    path: Path
    pulled: bool  # obtained from PyPI during this call


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lrfp" / "models"


REMOVED = {
    "short": (
        "the short-range BlazeFace model was removed from lrfp: it finds no face under 32 px in a 640x360 frame "
        "(lrfp is for small faces); use the full-range model (`--detector blazeface`, the default)"
    ),
}
"""Model names lrfp no longer offers, with the reason a user is given. The short-range model (128x128 input,
faces within ~2 m) found no face under 96 px in a 640x360 frame (../shared/models/SOURCE.md); nothing in lrfp
needs it, since the full-range model run on the whole frame finds the large faces too (recall 100% >= 48 px,
docs/detectors.md)."""


def model_info(name: str) -> ModelFile:
    """The model file called `name` ('full'). Raises ModelsError for an unknown or removed name."""
    if name in REMOVED:
        raise ModelsError(REMOVED[name])
    try:
        return MODELS[name]
    except KeyError:
        raise ModelsError(f"unknown detector model {name!r} (known: {', '.join(MODELS)})") from None


def models_dir_problem(path: Path) -> str | None:
    """Why `path` cannot be a models folder ('is a file, not a folder', 'does not exist', ...), or None."""
    if path.is_dir():
        return None
    if path.is_file():
        return "is a file, not a folder"
    if path.exists():
        return "is not a folder"
    if path.is_symlink():
        return "is a link to nothing (its target does not exist)"
    return "is not a folder (it does not exist)"


def check_models_dirs(models_dir: Path | None) -> None:
    """Raises InputError (exit 2) if --models-dir or LRFP_MODELS_DIR is given but is not a folder, saying what
    it is instead (a file, nothing)."""
    from lrfp.errors import InputError

    if models_dir is not None and (why := models_dir_problem(Path(models_dir))):
        raise InputError(f"--models-dir {models_dir} {why}; give the folder that holds the detector models, "
                         "or leave it out to use the user cache")
    env = os.environ.get(ENV_MODELS_DIR)
    if env and (why := models_dir_problem(Path(env))):
        raise InputError(f"{ENV_MODELS_DIR}={env} {why}; fix or unset it")


def search_dirs(models_dir: Path | None) -> list[tuple[str, Path]]:
    """Where model files are looked for, in order, with the reason each place is searched. Raises InputError
    (check_models_dirs) for a given folder that is not one."""
    check_models_dirs(models_dir)
    dirs: list[tuple[str, Path]] = []
    if models_dir is not None:
        dirs.append(("--models-dir", Path(models_dir)))
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        dirs.append((ENV_MODELS_DIR, Path(env)))
    dirs.append(("user cache", user_cache_dir()))
    return dirs


class CorruptModelFile(ModelsError):
    """A model file in a models folder has the wrong sha256 (exit 2: the user must delete or replace it)."""

    exit_code = 2


def verify(path: Path, model: ModelFile) -> None:
    """Raises CorruptModelFile unless the file's sha256 is the model's."""
    digest = file_sha256(path)
    if digest != model.sha256:
        raise CorruptModelFile(
            f"{path} has sha256 {digest}, expected {model.sha256} for {model.filename}: "
            "the file is corrupt or a different model; delete it and run `lrfp models pull`"
        )


def find_model(name: str, models_dir: Path | None = None) -> Path | None:
    """The first verified copy of the model in the search dirs, or None.

    A corrupt copy in a folder the user named (--models-dir, LRFP_MODELS_DIR) is an error (CorruptModelFile,
    exit 2); one in lrfp's own user cache is only a cache: it is ignored with a logged warning naming it, so
    that `resolve_model` obtains the model again and replaces it.
    """
    model = model_info(name)
    for why, d in search_dirs(models_dir):
        candidate = d / model.filename
        if candidate.is_file():
            try:
                verify(candidate, model)
            except CorruptModelFile:
                if why != "user cache":
                    raise
                log.warning("ignoring %s in the user cache: its sha256 is not %s's (a corrupt or different file); it "
                            "is obtained again", candidate, model.filename)
                continue
            return candidate
    return None


def resolve_model(
    name: str, models_dir: Path | None = None, *, pull: Callable[[Path], list[Path]] | None = None,
    on_pull: Callable[[str], None] | None = None,
) -> ResolvedModel:
    """Find the model, else pull it into the user cache (saying so through `on_pull`)."""
    model = model_info(name)
    found = find_model(name, models_dir)
    if found is not None:
        return ResolvedModel(model, found, pulled=False)
    where = ", ".join(f"{p} ({why})" for why, p in search_dirs(models_dir))
    dest = user_cache_dir()
    if on_pull is not None:
        on_pull(f"{model.filename} not found in {where}; obtaining it from the {WHEEL_REQUIREMENT} wheel on PyPI into {dest}")
    (pull or pull_models)(dest)
    return ResolvedModel(model, dest / model.filename, pulled=True)


def pip_download_wheel(dest: Path) -> Path:
    """`pip download` the mediapipe 0.10.21 wheel into dest (honours the user's pip config). Returns its path."""
    cmd = [
        sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps", "--only-binary=:all:",
        "--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON, "--implementation", "cp",
        "--dest", str(dest), "--disable-pip-version-check", "--no-input",
    ]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError as e:
        raise ModelsError(f"cannot run pip ({e}); install the models by hand, see the README") from e
    except subprocess.TimeoutExpired as e:
        raise ModelsError(f"`pip download {WHEEL_REQUIREMENT}` took more than 30 minutes; check the network") from e
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise ModelsError(
            f"`pip download {WHEEL_REQUIREMENT}` failed (exit {proc.returncode}): {tail}; check the network or "
            f"put the .tflite files in a folder and pass --models-dir (or set {ENV_MODELS_DIR})"
        )
    wheels = sorted(dest.glob("mediapipe-0.10.21-*.whl"))
    if not wheels:
        raise ModelsError(f"`pip download {WHEEL_REQUIREMENT}` succeeded but left no wheel in {dest}")
    return wheels[0]


def extract_models(wheel: Path, dest: Path, names: tuple[str, ...] = tuple(MODELS)) -> list[Path]:
    """Read the model members out of the wheel (a zip), check their sha256, write them atomically into dest."""
    written: list[Path] = []
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelsError(f"{wheel} is not a readable wheel (zip): {e}") from e
    with zf:
        members = set(zf.namelist())
        for name in names:
            model = model_info(name)
            member = f"{WHEEL_MEMBER_DIR}/{model.filename}"
            if member not in members:
                raise ModelsError(f"{wheel.name} has no member {member}: not the wheel lrfp expects")
            data = zf.read(member)
            digest = hashlib.sha256(data).hexdigest()
            if digest != model.sha256:
                raise ModelsError(
                    f"{member} in {wheel.name} has sha256 {digest}, expected {model.sha256}: refusing to use it"
                )
            dest.mkdir(parents=True, exist_ok=True)
            final = dest / model.filename
            tmp = final.with_name(f"{final.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, final)
            written.append(final)
    return written


def pull_models(dest: Path | None = None, *, download: Callable[[Path], Path] = pip_download_wheel) -> list[Path]:
    """Obtain every known model into dest (default: the user cache). Files already there and valid are kept."""
    dest = Path(dest) if dest is not None else user_cache_dir()
    missing = []
    for name, model in MODELS.items():
        path = dest / model.filename
        if path.is_file() and file_sha256(path) == model.sha256:
            continue
        missing.append(name)
    if missing:
        with tempfile.TemporaryDirectory(prefix="lrfp-wheel-") as tmp:
            wheel = download(Path(tmp))
            extract_models(wheel, dest, tuple(missing))
    return [dest / MODELS[n].filename for n in MODELS]
