"""Grouped, stratified, seeded train/validation/test splits with a leakage audit.

The unit of assignment is a *group* of crops that must stay together: a face track, else the
video, else an imported group id (SMFD's ``group_id``), else the crop itself. Groups joined by a
near-duplicate pair (perceptual hash within ``hash_distance`` bits) are merged first, so that the
same face cannot sit in train and test under two group ids (``dedupe="move"``, the default).
Groups are then placed one by one, largest first, into the subset whose per-class counts they
bring closest to the targets, which stratifies by label even when a group holds both classes.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from lrfp import LABELS, SUBSETS
from lrfp.errors import SplitError, UsageError
from lrfp.events import ProgressCallback, ProgressEvent
from lrfp.face_size import face_px, quantiles
from lrfp.names import NAME_RULE, name_problem
from lrfp.store import Store

log = logging.getLogger(__name__)

DEFAULT_RATIOS = (0.80, 0.04, 0.16)
GROUP_BY = ("track", "video", "group")
# The order in which group keys are tried, by the level asked for; a crop lacking that key falls back.
_KEY_CHAINS = {
    "track": ("track", "video", "group"),
    "video": ("video", "track", "group"),
    "group": ("group", "track", "video"),
}
DEDUPE_MODES = ("move", "drop", "off")
DEFAULT_HASH_DISTANCE = 6
"""Hamming distance (of 64 pHash bits) at or below which two crops count as near-duplicates.

On the whole SMFD set at 32 px, 6 finds every masked/unmasked copy of one photo that its groups
missed (4 finds only one of them); the price is a few merges of different people in front of the
same studio background, and over-merging only makes a split coarser, never leaky.
"""
MAX_EXAMPLES = 10


@dataclass(frozen=True)
class SplitConfig:
    name: str = "default"
    seed: int = 0
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    test_size: int | None = None
    balance: bool = False
    min_face: int | None = None
    group_by: str = "track"
    dedupe: str = "move"
    hash_distance: int = DEFAULT_HASH_DISTANCE

    def check(self) -> None:
        """Raise UsageError naming the option when a field is out of range (called by grouped_split)."""
        check_ratios(self.ratios)
        if self.group_by not in GROUP_BY:
            raise UsageError(f"--group-by {self.group_by!r}: choose one of {', '.join(GROUP_BY)}")
        if self.dedupe not in DEDUPE_MODES:
            raise UsageError(f"--dedupe {self.dedupe!r}: choose one of {', '.join(DEDUPE_MODES)}")
        if self.test_size is not None and self.test_size < 2:
            raise UsageError(f"--test-size {self.test_size}: the test split needs at least 2 crops (one per class)")
        if self.min_face is not None and self.min_face < 1:
            raise UsageError(f"--min-face {self.min_face}: must be a positive number of pixels")
        if not 0 <= self.hash_distance <= 64:
            raise UsageError(f"--hash-distance {self.hash_distance}: must be between 0 and 64 (bits of a 64-bit pHash)")
        if not self.name or not self.name.strip():
            raise UsageError("--name must not be empty")
        problem = name_problem(self.name)
        if problem:  # the same rule as source names (lrfp.names): a split's name is shown and typed back
            raise UsageError(f"--name {self.name!r} {problem}: {NAME_RULE}")


def parse_ratios(text: str) -> tuple[float, float, float]:
    """`--ratios 0.8,0.04,0.16` (train, validation, test) into a checked tuple."""
    parts = [p.strip() for p in text.replace("/", ",").split(",")]
    if len(parts) != 3:
        raise UsageError(f"--ratios {text!r}: give three numbers, train,validation,test (e.g. 0.8,0.04,0.16)")
    try:
        ratios = tuple(float(p) for p in parts)
    except ValueError:
        raise UsageError(f"--ratios {text!r}: not numbers; give three, e.g. 0.8,0.04,0.16") from None
    check_ratios(ratios)  # type: ignore[arg-type]
    return ratios  # type: ignore[return-value]


def check_ratios(ratios: tuple[float, ...]) -> None:
    shown = ",".join(f"{r:g}" for r in ratios)
    if len(ratios) != 3:
        raise UsageError(f"--ratios {shown}: give three numbers, train,validation,test")
    if any(r < 0 for r in ratios):
        raise UsageError(f"--ratios {shown}: ratios must not be negative")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise UsageError(f"--ratios {shown}: they sum to {sum(ratios):g}, but must sum to 1")
    if ratios[0] == 0 or ratios[2] == 0:
        raise UsageError(f"--ratios {shown}: train and test must be larger than 0 (validation may be 0)")


@dataclass
class Crop:
    id: int
    label: str
    face_px: int
    source: str
    group: str
    group_kind: str
    path: str
    sha256: str


@dataclass
class SplitResult:
    name: str
    assignments: dict[int, str]
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# -- reading the store -------------------------------------------------------------------------


def group_key(row: Any, group_by: str = "track") -> tuple[str, str]:
    """(kind, key) of the group a crop row belongs to; the row needs the crop's columns plus
    `source_name` and `source_kind`."""
    for kind in _KEY_CHAINS[group_by]:
        if kind == "track" and row["track_id"]:
            return "track", f"track:{row['source_name']}/{row['track_id']}"
        if kind == "video" and row["source_kind"] == "video":
            return "video", f"video:{row['source_name']}"
        if kind == "group" and row["group_id"]:
            return "group", f"group:{row['group_id']}"
    return "crop", f"crop:{row['sha256'][:16]}"


def usable_crops(store: Store, cfg: SplitConfig) -> tuple[list[Crop], dict[str, int]]:
    """The crops a split may use (current label a class, face large enough), and what was left out."""
    rows = store.crops_with_labels()
    superseded = store.superseded_import_crops()  # kept by `import --redo` only for the splits that held them
    crops: list[Crop] = []
    excluded: Counter = Counter()
    for r in rows:
        if r["id"] in superseded:
            excluded["replaced_by_import_redo"] += 1
            continue
        if r["label"] not in LABELS:
            excluded[r["label"] or "unlabeled"] += 1
            continue
        side = face_px(r)
        if cfg.min_face is not None and side < cfg.min_face:
            excluded["below_min_face"] += 1
            continue
        kind, key = group_key(r, cfg.group_by)
        crops.append(Crop(r["id"], r["label"], side, r["source_name"], key, kind, r["path"], r["sha256"]))
    return crops, dict(excluded)


# -- perceptual hashes -------------------------------------------------------------------------


def perceptual_hashes(store: Store, crops: list[Crop], progress: ProgressCallback | None = None):
    """64-bit pHash of each crop and of its horizontal mirror: numpy uint64 array N x 2, in the order of `crops`.

    The mirror's hash is kept because a face and its mirror differ by 24-30 bits of pHash (far above any
    useful threshold), while a horizontal flip is the thesis's own augmentation: mirrored copies are
    near-duplicates. Raises CropFileError naming a crop whose file is missing or damaged.
    """
    import imagehash
    import numpy as np
    from PIL import ImageOps

    from lrfp.crop_files import open_crop

    out = np.zeros((len(crops), 2), dtype=np.uint64)
    for i, c in enumerate(crops):
        im = open_crop(store.root, {"id": c.id, "path": c.path})
        out[i, 0] = int(str(imagehash.phash(im)), 16)
        out[i, 1] = int(str(imagehash.phash(ImageOps.mirror(im))), 16)
        if progress and (i % 200 == 0 or i + 1 == len(crops)):
            progress(ProgressEvent("hash", i + 1, len(crops)))
    return out


def near_duplicate_pairs(hashes, max_distance: int, subset_of: list[str] | None = None) -> list[tuple[int, int, int]]:
    """Index pairs (i < j, distance) whose hashes differ in at most `max_distance` bits.

    `hashes`: uint64 array N (one pHash each) or N x 2 (pHash and mirror pHash, from `perceptual_hashes`);
    with mirrors, the distance of a pair is the smaller of image-to-image and image-to-mirror, so a
    mirrored copy counts as a near-duplicate. With `subset_of`, only pairs whose members lie in
    different subsets (a cross-split leak).
    """
    import numpy as np

    hashes = np.asarray(hashes, dtype=np.uint64)
    plain = hashes if hashes.ndim == 1 else hashes[:, 0]
    mirror = None if hashes.ndim == 1 else hashes[:, 1]
    n = len(plain)
    subsets = np.array(subset_of) if subset_of is not None else None
    pairs: list[tuple[int, int, int]] = []
    chunk = 512
    for start in range(0, n, chunk):
        block = plain[start:start + chunk]
        dist = np.bitwise_count(block[:, None] ^ plain[None, :])
        if mirror is not None:
            dist = np.minimum(dist, np.bitwise_count(block[:, None] ^ mirror[None, :]))
            dist = np.minimum(dist, np.bitwise_count(mirror[start:start + chunk][:, None] ^ plain[None, :]))
        rows_idx = np.arange(start, start + len(block))[:, None]
        mask = (dist <= max_distance) & (np.arange(n)[None, :] > rows_idx)
        if subsets is not None:
            mask &= subsets[start:start + chunk][:, None] != subsets[None, :]
        ii, jj = np.nonzero(mask)
        pairs.extend((int(start + i), int(j), int(dist[i, j])) for i, j in zip(ii, jj))
    return pairs


def _merge_groups(crops: list[Crop], pairs: Iterable[tuple[int, int, int]]) -> dict[str, str]:
    """Union the groups of each near-duplicate pair (in place); returns {old group: merged group}
    for the groups that were merged into another."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _ in pairs:
        a, b = find(crops[i].group), find(crops[j].group)
        if a != b:
            parent[max(a, b)] = min(a, b)  # the smaller name wins: the result does not depend on pair order
    roots = {c.group: find(c.group) for c in crops}
    for c in crops:
        c.group = roots[c.group]
    return {g: r for g, r in sorted(roots.items()) if g != r}


# -- assignment --------------------------------------------------------------------------------


def _targets(counts: Counter, cfg: SplitConfig) -> dict[str, dict[str, float]]:
    """Wanted crops per subset and class (floats: the greedy placement aims at them)."""
    pool = {c: (min(counts.values()) if cfg.balance else counts[c]) for c in LABELS}
    total = sum(pool.values())
    if cfg.test_size is None:
        fractions = dict(zip(SUBSETS, cfg.ratios))
    else:
        if cfg.test_size >= total:
            raise SplitError(
                f"--test-size {cfg.test_size} is larger than the data: {total} usable labeled crops"
                + (" after --balance" if cfg.balance else "")
                + " (and train needs some too)"
            )
        test = cfg.test_size / total
        train_val = cfg.ratios[0] + cfg.ratios[1]
        fractions = {
            "train": (1 - test) * cfg.ratios[0] / train_val,
            "validation": (1 - test) * cfg.ratios[1] / train_val,
            "test": test,
        }
    # At least one crop of each class in every subset that is asked for, however small the data.
    return {s: {c: max(fractions[s] * pool[c], 1.0 if fractions[s] > 0 else 0.0) for c in LABELS} for s in SUBSETS}


def _assign(groups: dict[str, Counter], targets: dict[str, dict[str, float]], rng: random.Random) -> dict[str, str]:
    """Place each group in one subset: largest groups first, each where it reduces the
    normalized squared gap to the per-class targets the most (ties in random, seeded order)."""
    order = sorted(groups)
    rng.shuffle(order)
    order.sort(key=lambda g: -sum(groups[g].values()))
    active = [s for s in SUBSETS if sum(targets[s].values()) > 0]
    filled = {s: Counter() for s in SUBSETS}
    placed: dict[str, str] = {}
    for g in order:
        vec = groups[g]

        def cost(s: str) -> float:
            total = 0.0
            for c, n in vec.items():
                t = targets[s][c]
                if t <= 0:
                    total += 1e9 * n
                else:
                    total += (2 * (filled[s][c] - t) * n + n * n) / t
            return total

        best = min(active, key=cost)
        placed[g] = best
        filled[best].update(vec)
    return placed


def _balance(assignments: dict[int, str], crops: list[Crop], rng: random.Random) -> int:
    """Drop crops of the larger class in each subset until the classes are equal; returns how many."""
    dropped = 0
    by_id = {c.id: c for c in crops}
    for s in SUBSETS:
        per_class = {c: sorted(i for i, sub in assignments.items() if sub == s and by_id[i].label == c) for c in LABELS}
        keep = min(len(v) for v in per_class.values())
        for ids in per_class.values():
            for crop_id in rng.sample(ids, len(ids) - keep):
                del assignments[crop_id]
                dropped += 1
    return dropped


def _check_feasible(counts: Counter, cfg: SplitConfig, n_groups: int) -> None:
    total = sum(counts.values())
    shown = ", ".join(f"{c} {counts[c]}" for c in LABELS)
    if total == 0:
        raise SplitError("no usable labeled crops to split: label crops with_mask/without_mask first (`lrfp label`)"
                         + (f" or lower --min-face {cfg.min_face}" if cfg.min_face else ""))
    for c in LABELS:
        if counts[c] == 0:
            raise SplitError(
                f"no {c} crops among the {total} usable labeled crops ({shown}): both classes are needed to stratify a split"
            )
    n_subsets = sum(1 for r in cfg.ratios if r > 0)
    low = [c for c in LABELS if counts[c] < n_subsets]
    if low or n_groups < n_subsets:
        raise SplitError(
            f"too few labeled crops for a {n_subsets}-way split: {total} usable ({shown}) in {n_groups} group(s); "
            f"each split needs at least one crop of each class, so at least {n_subsets} of each class "
            f"in {n_subsets} groups"
        )


def grouped_split(
    store: Store, cfg: SplitConfig = SplitConfig(), progress: ProgressCallback | None = None,
) -> SplitResult:
    """Assign every usable labeled crop to train/validation/test, grouped, stratified, seeded; store it.

    The same store and config (seed included) always give the same split. Raises SplitError
    (nothing stored) when the data cannot fill the split as asked or an `lrfp import --redo` is unfinished,
    UsageError when `cfg` is invalid.
    """
    cfg.check()
    if redos := store.import_redos_under_way():
        raise SplitError(f"an `lrfp import --redo` of source(s) {', '.join(redos)} is under way or was stopped before "
                         "it finished: the store holds old and new crops of the same files. Let it finish (or rerun "
                         "that import with the redo's settings to finish it), then split")
    crops, excluded = usable_crops(store, cfg)
    counts = Counter(c.label for c in crops)
    _check_feasible(counts, cfg, len({c.group for c in crops}))
    targets = _targets(counts, cfg)

    hashes = perceptual_hashes(store, crops, progress)
    groups_before = len({c.group for c in crops})
    merged_pairs: list[tuple[int, int, int]] = []
    merged_into: dict[str, str] = {}
    if cfg.dedupe == "move":
        merged_pairs = [p for p in near_duplicate_pairs(hashes, cfg.hash_distance) if crops[p[0]].group != crops[p[1]].group]
        merged_into = _merge_groups(crops, merged_pairs)

    groups: dict[str, Counter] = defaultdict(Counter)
    for c in crops:
        groups[c.group][c.label] += 1
    rng = random.Random(cfg.seed)
    placed = _assign(groups, targets, rng)
    assignments = {c.id: placed[c.group] for c in crops}

    warnings = _size_warnings(groups, placed, targets)
    dropped_balance = _balance(assignments, crops, rng) if cfg.balance else 0

    index = {c.id: i for i, c in enumerate(crops)}
    kept = [c for c in crops if c.id in assignments]
    kept_hashes = hashes[[index[c.id] for c in kept]] if kept else hashes[:0]
    cross = near_duplicate_pairs(kept_hashes, cfg.hash_distance, [assignments[c.id] for c in kept])
    dropped_dedupe: list[tuple[int, int, int]] = []
    if cfg.dedupe == "drop" and cross:
        dropped_dedupe = cross
        for crop_id in _drop_for_pairs(kept, cross, assignments):
            del assignments[crop_id]
        kept = [c for c in kept if c.id in assignments]
        kept_hashes = hashes[[index[c.id] for c in kept]] if kept else hashes[:0]
        cross = near_duplicate_pairs(kept_hashes, cfg.hash_distance, [assignments[c.id] for c in kept])

    _check_filled(kept, assignments, cfg, groups, targets)
    report = _report(
        kept, assignments, cfg, excluded=excluded, targets=targets, warnings=warnings,
        leak_pairs=[(kept[i], kept[j], d) for i, j, d in cross],
        dedupe={
            "mode": cfg.dedupe,
            "hash_distance": cfg.hash_distance,
            "groups_before": groups_before,
            "merged_pairs": len(merged_pairs),
            "merged_examples": [_pair_json(crops[i], crops[j], d) for i, j, d in merged_pairs[:MAX_EXAMPLES]],
            # Published datasets carry the merged group, so that users who re-split keep the merges.
            "merged_into": merged_into,
            "dropped": len(crops) - len(kept) - dropped_balance,
            "dropped_pairs": len(dropped_dedupe),
        },
        balance_dropped=dropped_balance,
    )
    params = {
        "ratios": list(cfg.ratios), "test_size": cfg.test_size, "balance": cfg.balance, "min_face": cfg.min_face,
        "group_by": cfg.group_by, "dedupe": cfg.dedupe, "hash_distance": cfg.hash_distance,
    }
    store.save_split(cfg.name, sorted(assignments.items()), seed=cfg.seed, params=params, report=report)
    log.info("split %s: %d crops stored", cfg.name, len(assignments))
    return SplitResult(cfg.name, assignments, report, warnings)


def _drop_for_pairs(kept: list[Crop], pairs: list[tuple[int, int, int]], assignments: dict[int, str]) -> list[int]:
    """For each cross-split pair, the crop to drop: keep evaluation data, so train's copy goes first."""
    keep_rank = {"test": 2, "validation": 1, "train": 0}
    dropped: set[int] = set()
    for i, j, _ in pairs:
        a, b = kept[i], kept[j]
        if a.id in dropped or b.id in dropped:
            continue
        loser = a if keep_rank[assignments[a.id]] < keep_rank[assignments[b.id]] else b
        dropped.add(loser.id)
    return sorted(dropped)


def _size_warnings(groups: dict[str, Counter], placed: dict[str, str], targets: dict[str, dict[str, float]]) -> list[str]:
    warnings = []
    for s in SUBSETS:
        want = sum(targets[s].values())
        if want <= 0:
            continue
        big = sorted((g for g in groups if sum(groups[g].values()) > want), key=lambda g: -sum(groups[g].values()))
        if big:
            largest = big[0]
            warnings.append(
                f"{len(big)} group(s) are larger than the whole {s} split (target {want:.0f} crops); the largest, "
                f"{largest}, has {sum(groups[largest].values())} crops and went to {placed[largest]}: "
                f"such groups cannot be split, so the counts deviate from the ratios"
            )
    return warnings


def _check_filled(kept: list[Crop], assignments: dict[int, str], cfg: SplitConfig,
                  groups: dict[str, Counter], targets: dict[str, dict[str, float]]) -> None:
    got = Counter((assignments[c.id], c.label) for c in kept)
    for s in SUBSETS:
        if sum(targets[s].values()) <= 0:
            continue
        for c in LABELS:
            if got[(s, c)] == 0:
                sizes = sorted((sum(v.values()) for v in groups.values()), reverse=True)
                total = sum(sizes)
                raise SplitError(
                    f"the {s} split got no {c} crop: {total} usable crops in {len(groups)} group(s) "
                    f"(largest {sizes[0]} crops) cannot fill train/validation/test at "
                    f"{'/'.join(f'{r:g}' for r in cfg.ratios)}"
                    + (f" with --test-size {cfg.test_size}" if cfg.test_size else "")
                    + f" (wanted about {targets[s][c]:.1f} {c} crops in {s}); label more crops, "
                    "use finer groups (--group-by), or change --ratios"
                )


# -- report ------------------------------------------------------------------------------------


def _pair_json(a: Crop, b: Crop, d: int, assignments: dict[int, str] | None = None) -> dict[str, Any]:
    out = {"distance": d, "a": {"crop_id": a.id, "sha256": a.sha256, "group": a.group, "label": a.label},
           "b": {"crop_id": b.id, "sha256": b.sha256, "group": b.group, "label": b.label}}
    if assignments is not None:
        out["a"]["subset"] = assignments[a.id]
        out["b"]["subset"] = assignments[b.id]
    return out


def _summary(crops: list[Crop]) -> dict[str, Any]:
    q = quantiles([c.face_px for c in crops])
    return {
        "crops": len(crops),
        "groups": len({c.group for c in crops}),
        "sources": sorted({c.source for c in crops}),
        "face_px": dict(zip(("min", "p25", "median", "p75", "max"), q)) if q else None,
    }


def _report(
    kept: list[Crop], assignments: dict[int, str], cfg: SplitConfig, *, excluded: dict[str, int],
    targets: dict[str, dict[str, float]], warnings: list[str], leak_pairs: list[tuple[Crop, Crop, int]],
    dedupe: dict[str, Any], balance_dropped: int,
) -> dict[str, Any]:
    subsets: dict[str, Any] = {}
    for s in SUBSETS:
        members = [c for c in kept if assignments[c.id] == s]
        entry = _summary(members)
        entry["classes"] = {lab: _summary([c for c in members if c.label == lab]) for lab in LABELS}
        entry["target"] = round(sum(targets[s].values()), 1)
        subsets[s] = entry
    total = len(kept)
    group_subsets: dict[str, set[str]] = defaultdict(set)
    source_subsets: dict[str, set[str]] = defaultdict(set)
    group_labels: dict[str, set[str]] = defaultdict(set)
    for c in kept:
        group_subsets[c.group].add(assignments[c.id])
        source_subsets[c.source].add(assignments[c.id])
        group_labels[c.group].add(c.label)
    shared = sorted(g for g, ss in group_subsets.items() if len(ss) > 1)
    return {
        "name": cfg.name,
        "seed": cfg.seed,
        "usable": total,
        "excluded": excluded,
        "group_by": cfg.group_by,
        "group_keys": dict(Counter(c.group_kind for c in kept)),
        "groups": len(group_subsets),
        "mixed_label_groups": sum(1 for labs in group_labels.values() if len(labs) > 1),
        "fractions": {s: round(subsets[s]["crops"] / total, 4) if total else 0.0 for s in SUBSETS},
        "subsets": subsets,
        "balance_dropped": balance_dropped,
        "dedupe": dedupe,
        "leakage": {
            "shared_groups": len(shared),
            "shared_group_examples": shared[:MAX_EXAMPLES],
            "near_duplicates": {
                "hash": "phash64",
                "max_distance": cfg.hash_distance,
                "pairs": len(leak_pairs),
                "examples": [_pair_json(a, b, d, assignments) for a, b, d in leak_pairs[:MAX_EXAMPLES]],
            },
            # Information, not a leak when grouping by track: one video's tracks may sit in several splits.
            "sources_in_several_splits": sorted(src for src, ss in source_subsets.items() if len(ss) > 1),
        },
        "warnings": warnings,
    }
