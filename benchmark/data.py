"""Benchmark data: a store split, a dataset written by `lrfp publish`, or a class-folder tree, decoded once.

Images are decoded once into uint8 arrays; for each input size the whole subset is resized once into one
uint8 tensor (moved to the device by the engine). Augmentation (random rotation + horizontal flip) and
ImageNet normalization run on the device, on whole batches.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lrfp import LABELS, SUBSETS
from lrfp.errors import BenchError, BenchUsageError, InputError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# the training rotation's sampling: torchvision.transforms.RandomRotation's default (InterpolationMode.NEAREST).
# The thesis trained with torchvision and names no interpolation; lrfp before 2026-11-30 used "bilinear".
ROTATION_INTERPOLATION = "nearest"


@dataclass
class Subset:
    """One subset, decoded: images (HxWx3 uint8 at their stored size), labels (index into LABELS), face sizes."""

    images: list[np.ndarray]
    labels: np.ndarray
    face_px: np.ndarray  # face size in px: shorter side of the detected face box, else of the stored crop
    keys: list[str]  # crop id / file name, for tracing a prediction back
    skipped: list[tuple[str, str]] = field(default_factory=list)  # --eval-on: (file, why) of unreadable images left out
    _resized: dict[int, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    def tensor(self, size: int) -> Any:
        """All images resized (stretched, bilinear with antialias) to size x size: uint8 tensor N,3,S,S; cached."""
        if size not in self._resized:
            import torch
            from PIL import Image

            out = torch.empty((len(self.images), 3, size, size), dtype=torch.uint8)
            for i, arr in enumerate(self.images):
                im = Image.fromarray(arr)
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                out[i] = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)
            self._resized[size] = out
        return self._resized[size]


@dataclass
class BenchData:
    """The subsets to train/validate/test on, where they came from, and the split's leakage audit."""

    name: str  # split name, dataset id or folder
    kind: str  # "store", "dataset" or "folder"
    subsets: dict[str, Subset]
    audit: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            s: {LABELS[k]: int(v) for k, v in sorted(Counter(sub.labels.tolist()).items())}
            for s, sub in self.subsets.items()
        }

    def __getstate__(self) -> dict[str, Any]:  # worker processes get the decoded images, not the resized caches
        state = dict(self.__dict__)
        state["subsets"] = {k: Subset(v.images, v.labels, v.face_px, v.keys) for k, v in self.subsets.items()}
        return state


def _decode(path: Path) -> np.ndarray:
    """HxWx3 uint8. Raises lrfp.errors.ImageFileError naming the file (missing, damaged, too large)."""
    from lrfp.images import open_rgb

    return np.asarray(open_rgb(path)).copy()


def _subset_problem(counts: dict[str, dict[str, int]], required: tuple[str, ...] = SUBSETS) -> str | None:
    """Why subsets with these {subset: {label: n}} counts cannot be benchmarked ('the validation subset is
    empty', 'the test subset has no without_mask crops'), or None. Labels other than LABELS are not counted."""
    for subset in required:
        have = {label: n for label, n in (counts.get(subset) or {}).items() if label in LABELS and n}
        if not have:
            return f"the {subset} subset is empty"
        missing = [label for label in LABELS if label not in have]
        if missing:
            return f"the {subset} subset has no {' or '.join(missing)} crops"
    return None


def _check_classes(name: str, subsets: dict[str, Subset], required: tuple[str, ...], fix: str = "") -> None:
    """Raise BenchUsageError (exit 2) unless each required subset holds crops of every class; `fix` says what to do."""
    counts = {s: {LABELS[k]: int(v) for k, v in Counter(sub.labels.tolist()).items()} for s, sub in subsets.items()}
    problem = _subset_problem(counts, required)
    if problem:
        why = ("a benchmark needs labeled crops of both classes in train, validation and test" if len(required) > 1
               else "accuracy on two classes needs images of both")
        raise BenchUsageError(f"{name}: {problem}: {why}" + (f"; {fix}" if fix else ""))


def _usable_splits_hint(store: Any, name: str) -> str:
    """What to do about an unusable split: the store's other splits that would work (as --split NAME), else
    how to make one."""
    usable = [n for n in store.split_names() if n != name and _subset_problem(store.split_label_counts(n)) is None]
    make = "make one with `lrfp split --name NAME` (ratios that give every subset crops, e.g. the default 0.8,0.04,0.16)"
    if usable:
        return (f"this store's splits that would work: {', '.join(usable)} (e.g. --split {usable[-1]}); "
                f"or {make}")
    return f"no other split of this store would work: {make}"


def load_store_split(data_dir: Path | str, split: str | None = None, progress: Callable[[int, int], None] | None = None) -> BenchData:
    """Load a split of the store (default: the last one `lrfp split` wrote); only crops labeled with a class."""
    from lrfp.crop_files import open_crop
    from lrfp.face_size import face_px
    from lrfp.split import group_key
    from lrfp.store import open_store

    with open_store(data_dir, create=False, read_only=True) as store:
        name = store.resolve_split(split)
        info = store.split_info(name)
        group_by = info["params"].get("group_by", "track")
        rows = store.split_crops(name)
        root = store.root
        counts = store.split_label_counts(name)
        problem = _subset_problem(counts)
        if problem:  # before decoding anything: a lopsided or empty split fails at once
            raise BenchUsageError(
                f"split {name!r}: {problem} (labeled crops per subset: {_counts_text(counts)}): "
                f"a benchmark needs labeled crops of both classes in train, validation and test; "
                + _usable_splits_hint(store, name))
        groups: dict[str, set[str]] = {}
        videos: dict[str, set[str]] = {}
        per_subset: dict[str, list] = {s: [] for s in SUBSETS}
        dropped = Counter()
        for r in rows:
            if r["label"] not in LABELS:
                dropped[r["label"] or "unlabeled"] += 1
                continue
            per_subset[r["subset"]].append(r)
            # Leakage keys: the group the split promised to keep together (split.group_key, by the split's
            # own --group-by), and the source video.
            groups.setdefault(group_key(r, group_by)[1], set()).add(r["subset"])
            if r["frame_index"] is not None or r["time_s"] is not None:
                videos.setdefault(r["source_name"], set()).add(r["subset"])
        total = sum(len(v) for v in per_subset.values())
        subsets = {}
        done = 0
        for s, srows in per_subset.items():
            images, labels, face, keys = [], [], [], []
            for r in srows:
                images.append(np.asarray(open_crop(root, r)).copy())  # CropFileError names the crop and the fix
                labels.append(LABELS.index(r["label"]))
                face.append(face_px(r))
                keys.append(str(r["id"]))
                done += 1
                if progress and (done % 64 == 0 or done == total):
                    progress(done, total)
            subsets[s] = Subset(images, np.asarray(labels, dtype=np.int64), np.asarray(face, dtype=np.int64), keys)
    leaked = sorted(g for g, subs in groups.items() if len(subs) > 1)
    audit = {
        "split": name, "split_seed": info["seed"], "groups": len(groups), "leaked_groups": len(leaked),
        "leaked_examples": leaked[:5], "videos_in_several_subsets": sum(len(v) > 1 for v in videos.values()),
        "dropped": dict(dropped), "split_report": info["report"],
        # what `lrfp split` itself checked (near-duplicate pairs across subsets by perceptual hash)
        "split_near_duplicate_pairs": ((info["report"].get("leakage") or {}).get("near_duplicates") or {}).get("pairs"),
        "split_group_by": info["report"].get("group_by"),
    }
    if dropped:
        log.info("split %s: left out %s (not a class label)", name, dict(dropped))
    return BenchData(name=name, kind="store", subsets=subsets, audit=audit)


def _counts_text(counts: dict[str, dict[str, int]]) -> str:
    """'train 120 with_mask + 120 without_mask, validation 0, test ...' for a message."""
    parts = []
    for subset in SUBSETS:
        have = {label: (counts.get(subset) or {}).get(label) for label in LABELS}
        have = {label: n for label, n in have.items() if n}
        parts.append(f"{subset} " + (" + ".join(f"{n} {label}" for label, n in have.items()) if have else "0"))
    return ", ".join(parts)


def _label_index(value: Any, names: list[str] | None) -> int:
    label = names[value] if names is not None and isinstance(value, (int, np.integer)) else value
    if label not in LABELS:
        raise InputError(f"unknown label {label!r}: expected {' or '.join(LABELS)} (as `lrfp publish` writes)")
    return LABELS.index(label)


def _subset_from_hf(ds: Any, subset: str, source: str = "") -> Subset:
    from lrfp.images import to_rgb

    feat = ds.features.get("label")
    names = list(getattr(feat, "names", []) or []) or None
    has_face = "face_px" in ds.column_names
    images, labels, face, keys = [], [], [], []
    for i, ex in enumerate(ds):
        arr = np.asarray(to_rgb(ex["image"])).copy()  # 16-bit, alpha, CMYK...: by what the values mean
        images.append(arr)
        try:
            labels.append(_label_index(ex["label"], names))
        except InputError as e:
            raise InputError(f"{source}{' ' if source else ''}{subset} row {i}: {e}") from None
        face.append(int(ex["face_px"]) if has_face and ex["face_px"] is not None else min(arr.shape[:2]))
        keys.append(f"{subset}/{i}")
    return Subset(images, np.asarray(labels, dtype=np.int64), np.asarray(face, dtype=np.int64), keys)


def _looks_local(spec: str) -> bool:
    """A Hub repo id is `owner/name`; anything else (./x, /x, ~/x, a/b/c, x) is meant as a local folder."""
    return spec.startswith((".", "/", "~")) or spec.count("/") != 1 or Path(spec).expanduser().exists()


def _load_hf(dataset: str) -> Any:
    try:
        import datasets
    except ImportError as e:  # a GPU machine may run `lrfp bench` without it: only --dataset/--eval-on need it
        raise BenchError(f"reading {dataset!r} needs the `datasets` package, which is not installed here") from e

    path = Path(dataset).expanduser()
    check_local_folder("--dataset", dataset)
    try:
        if path.is_dir() and (path / "dataset_dict.json").exists():
            return datasets.load_from_disk(str(path))
        return datasets.load_dataset(str(path) if path.exists() else dataset)
    except Exception as e:  # datasets raises many types (DatasetNotFoundError, ConnectionError, ValueError...)
        # A local folder it cannot read is bad input (exit 2); a Hub id that fails (offline, no such repo) a failure.
        error = InputError if path.exists() else BenchError
        if isinstance(e, FileNotFoundError) or type(e).__name__ in ("EmptyDatasetError", "DataFilesNotFoundError"):
            raise error(f"no dataset at {dataset!r} (a folder written by `lrfp publish`, or a Hub repo id): {e}") from e
        raise error(f"cannot load dataset {dataset!r}: {type(e).__name__}: {e}") from e


def load_published(dataset: str) -> BenchData:
    """A dataset written by `lrfp publish` (local folder or Hub repo id) with its train/validation/test splits."""
    dd = _load_hf(dataset)
    missing = [s for s in SUBSETS if s not in dd]
    if missing:
        raise InputError(f"dataset {dataset!r} has no {', '.join(missing)} split (has: {', '.join(dd)}): a benchmark "
                         "needs train, validation and test, as `lrfp publish` writes them")
    for s in SUBSETS:
        check_columns("--dataset", dataset, s, dd[s].column_names)
    subsets = {s: _subset_from_hf(dd[s], s, f"--dataset {dataset}") for s in SUBSETS}
    _check_classes(f"dataset {dataset!r}", subsets, SUBSETS)
    return BenchData(name=str(dataset), kind="dataset", subsets=subsets, audit={"split": "published"})


def check_columns(option: str, dataset: str, split: str, columns: list[str]) -> None:
    """Raise InputError (exit 2) unless a published split has the columns a benchmark needs (image, label).

    A folder written by `lrfp publish --annotations-only` has every other column but no image: the message
    says so and how to get one with pixels.
    """
    cols = set(columns)
    if {"image", "label"} <= cols:
        return
    if "image" not in cols and "crop_sha256" in cols:
        raise InputError(
            f"{option} {dataset} was published with --annotations-only: it holds labels and boxes but no pixels "
            "(no image column), so there is nothing to train or test on. Publish the split without "
            "--annotations-only (`lrfp publish --out DIR`) and bench that folder, or bench the store itself "
            "(`lrfp bench -d DATA_DIR`)"
        )
    raise InputError(f"{option} {dataset}: split {split} needs columns image and label (has: {', '.join(sorted(cols))})")


def load_image_folder(folder: Path) -> Subset:
    """A labeled folder with one subfolder per class (with_mask/, without_mask/), for `--eval-on`.

    A file that cannot be used (missing, damaged, or over Pillow's decompression-bomb limit; a broken symbolic link,
    a FIFO or a folder named like an image) is left out and listed in the Subset's `skipped` as (path relative to `folder`, why), as `lrfp predict FOLDER` and `lrfp
    import` skip such files; the harness reports them (the summary and results.md).
    """
    from lrfp.errors import ImageFileError
    from lrfp.images import image_files

    skipped: list[tuple[str, str]] = []
    images, labels, face, keys = [], [], [], []
    for li, label in enumerate(LABELS):
        d = folder / label
        if not d.is_dir():
            continue
        files, not_files = image_files(d)  # broken links, FIFOs, folders named x.jpg: listed, as import does
        skipped += [(f"{label}/{rel}", why) for rel, why in not_files]
        for p in files:
            try:
                arr = _decode(p)
            except ImageFileError as e:
                skipped.append((str(p.relative_to(folder)), e.reason))
                continue
            images.append(arr)
            labels.append(li)
            face.append(min(arr.shape[:2]))
            keys.append(str(p.relative_to(folder)))
    return Subset(images, np.asarray(labels, dtype=np.int64), np.asarray(face, dtype=np.int64), keys, skipped)


def check_local_folder(option: str, spec: str) -> None:
    """`--eval-on`/`--dataset` given as a local path must be an existing folder (a Hub id `owner/name` is not checked).

    Raises InputError (exit 2) saying whether it does not exist or is a file.
    """
    path = Path(spec).expanduser()
    if not _looks_local(spec) and not path.exists():
        return
    expected = ("a folder written by `lrfp publish`, or a Hub repo id owner/name" if option == "--dataset" else
                f"a folder with class subfolders {', '.join(LABELS)}/ or a dataset folder written by `lrfp publish`")
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {spec} is a file, not a folder: give {expected}")
    if not path.is_dir():
        if option == "--dataset":
            raise InputError(f"no dataset folder at {spec} (give a folder written by `lrfp publish`, or a Hub repo id owner/name)")
        raise InputError(f"{option} {spec}: no such folder (expected class subfolders {', '.join(LABELS)}/ "
                         "or a dataset written by `lrfp publish`)")
    if option == "--eval-on":
        check_eval_folder(spec)


_DATASET_FILES = ("dataset_dict.json", "*.parquet", "*.arrow")  # what `lrfp publish` and `save_to_disk` write


def check_eval_folder(spec: str) -> None:
    """An --eval-on folder must hold images of both classes in with_mask/ and without_mask/, or be a dataset
    written by `lrfp publish` (data/*.parquet). Looks at file names only (decoding comes later).

    Raises InputError (exit 2) naming the class subfolder that is missing or holds no images, or saying that
    the folder has neither class subfolders nor a dataset (and how many loose images it holds).
    """
    from lrfp.images import is_image_name

    folder = Path(spec).expanduser()

    def images(d: Path) -> int:
        return sum(1 for p in d.rglob("*") if p.is_file() and is_image_name(p))

    present = [label for label in LABELS if (folder / label).is_dir()]
    if present:
        counts = {label: images(folder / label) if label in present else 0 for label in LABELS}
        for label in LABELS:
            if counts[label]:
                continue
            others = ", ".join(f"{other}/ holds {n}" for other, n in counts.items() if other != label)
            what = "holds no images" if label in present else "is missing"
            raise InputError(f"--eval-on {spec}: its {label}/ subfolder {what} ({others}): an evaluation set needs "
                             f"images of both classes; put the {label} images in {folder / label}/")
        return
    if any(next(folder.rglob(pattern), None) is not None for pattern in _DATASET_FILES):
        return  # a published dataset: load_eval_set checks its columns
    loose = images(folder)
    fix = (f"it holds {loose} images outside class subfolders: move them into {folder / LABELS[0]}/ and "
           f"{folder / LABELS[1]}/" if loose else f"give a folder with {LABELS[0]}/ and {LABELS[1]}/ subfolders of images")
    raise InputError(f"--eval-on {spec} has no class subfolders ({LABELS[0]}/, {LABELS[1]}/) and is not a dataset written "
                     f"by `lrfp publish` (no data/*.parquet): {fix}")


def load_eval_set(target: str) -> tuple[str, Subset]:
    """`--eval-on`: a class-folder tree, or a published dataset (its test split, else all its splits)."""
    path = Path(target).expanduser()
    check_local_folder("--eval-on", target)
    # a local folder is named by its own name however it was spelled (".", "../ev/", an absolute path): the name
    # is every row's eval_set and part of the resume plan; a Hub repo id by its last part
    folder_name = path.resolve().name if path.exists() else path.name
    if path.is_dir() and any((path / label).is_dir() for label in LABELS):
        sub = load_image_folder(path)
        name = folder_name
    else:
        dd = _load_hf(target)
        parts = ["test"] if "test" in dd else list(dd)
        for p in parts:
            check_columns("--eval-on", target, p, dd[p].column_names)
        subs = [_subset_from_hf(dd[p], p, f"--eval-on {target}") for p in parts]
        sub = Subset(
            [i for s in subs for i in s.images], np.concatenate([s.labels for s in subs]),
            np.concatenate([s.face_px for s in subs]), [k for s in subs for k in s.keys],
        )
        name = f"{folder_name or target}:{'+'.join(parts)}"
    if len(sub) == 0 and sub.skipped:
        raise InputError(f"--eval-on {target}: none of its {len(sub.skipped)} image files can be read (first: "
                         f"{sub.skipped[0][0]}: {sub.skipped[0][1]})")
    if len(sub) == 0:
        raise InputError(f"--eval-on {target}: no images found (expected class subfolders {', '.join(LABELS)}/)")
    _check_classes(f"--eval-on {target}", {"eval": sub}, ("eval",),
                   fix=f"give a folder with images in both {LABELS[0]}/ and {LABELS[1]}/, or a dataset with both labels")
    return name, sub


# -- on-device batch transforms ------------------------------------------------------------------


def prepare_batch(x_u8: Any, *, train: bool, generator: Any = None, degrees: float = 0.0,
                  interpolation: str = ROTATION_INTERPOLATION) -> Any:
    """uint8 N,3,H,W -> (train: augmented, see `augment`) -> ImageNet-normalized float32 N,3,H,W, all on x's device.

    Equals ((x / 255) - mean) / std, computed as x * scale + shift with constants cached per device (building
    them every batch cost a host-to-device copy and a stream sync per step on CUDA: resnet18 +46% img/s
    without it, issue 12). Augmentation runs on 0..255 values: it is linear, so this commutes with / 255.
    """
    x = x_u8.float()
    if train:
        x = augment(x, generator, degrees, interpolation)
    scale, shift = _normalize_constants(x.device)
    # in place on the fresh tensor: on a CPU 5x faster than an out-of-place broadcast addcmul (measured, 64x3x64x64);
    # the channels-last copy stays after it: writing channels-last here made the per-channel add 4x slower (0.65 vs
    # 0.15 ms, perf/batch_prep.py)
    return x.mul_(scale).add_(shift)


_CONSTANTS: dict[str, tuple[Any, Any]] = {}


def _normalize_constants(device: Any) -> tuple[Any, Any]:
    """(1 / (255 std), -mean / std) as 1,3,1,1 float32 tensors on `device`, made once per device."""
    key = str(device)
    if key not in _CONSTANTS:
        import torch

        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
        _CONSTANTS[key] = ((1 / (255 * std)).float().to(device), (-mean / std).float().to(device))
    return _CONSTANTS[key]


def augment(x: Any, generator: Any, degrees: float, interpolation: str = ROTATION_INTERPOLATION) -> Any:
    """Random rotation in [-degrees, degrees] and horizontal flip (p=0.5), per image, in one grid_sample.

    x: float N,3,H,W (any scale). As torchvision's `RandomRotation` + `RandomHorizontalFlip` (the thesis's
    torchvision pipeline, and `perf/dataloader_baseline.py`'s): the corners are filled with black (0 before
    normalization), and `interpolation` is `grid_sample`'s mode, by default "nearest", `RandomRotation`'s own
    default (`ROTATION_INTERPOLATION`). Draws 2N numbers from `generator`: the same seed gives the same
    augmentation. The sampling grid is `F.affine_grid`'s (align_corners=False) written out as two broadcast
    products: the same values, at half the cost. For 64x3x64x64 on one AMD EPYC core the augmentation took
    0.89 ms nearest, 3.46 ms bilinear (`python -m perf.batch_prep --threads 1`, 2026-11-30 08:15 UTC).
    Raises ValueError (from `grid_sample`) for an interpolation it does not know.
    """
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=generator, device=x.device) * 2 - 1) * math.radians(degrees)
    flip = torch.where(torch.rand(n, generator=generator, device=x.device) < 0.5, -1.0, 1.0).view(n, 1, 1)
    cos, sin = torch.cos(angle).to(x.dtype).view(n, 1, 1), torch.sin(angle).to(x.dtype).view(n, 1, 1)
    # affine_grid's base grid for align_corners=False: pixel centres in [-1, 1]
    xs = (torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype) * ((w - 1) / w)).view(1, 1, w)
    ys = (torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype) * ((h - 1) / h)).view(1, h, 1)
    grid = torch.empty(n, h, w, 2, device=x.device, dtype=x.dtype)
    torch.add(cos * flip * xs, -sin * ys, out=grid[..., 0])  # theta = [[cos*flip, -sin, 0], [sin*flip, cos, 0]]
    torch.add(sin * flip * xs, cos * ys, out=grid[..., 1])
    return F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
