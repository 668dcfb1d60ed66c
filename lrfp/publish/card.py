"""The dataset card (README.md): a YAML header the Hub and `datasets` read, and how the data was made."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from lrfp import LABELS, __version__
from lrfp.face_size import face_px, quantiles
from lrfp.label.agreement import cohen_kappa
from lrfp.store import Store

HF_LICENSES = {
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0",
    "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-4.0", "odc-by", "odbl", "pddl", "gpl-3.0", "lgpl-3.0", "unlicense",
}
"""License identifiers of the Hub's metadata spec that a source's license may name directly."""

THESIS = (
    "Coazaca Bustamante & Ali Vilca, *Deep learning model using transfer learning for face-mask classification "
    "in low-resolution images* (thesis, Universidad Peruana Unión, Juliaca, 2023)"
)


def hub_license(text: str | None) -> str | None:
    """A source's free-text license as a Hub license id, or None when it is not one."""
    if not text:
        return None
    norm = text.strip().lower().replace(" ", "-").replace("_", "-")
    return norm if norm in HF_LICENSES else None


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def _yaml_header(feats: Any, split_sizes: dict[str, dict[str, int]], files: list[Path], licenses: list[str | None],
                 pretty_name: str, total: int) -> dict[str, Any]:
    ids = {hub_license(x) for x in licenses}
    header: dict[str, Any] = {}
    if len(ids) == 1 and None not in ids:
        header["license"] = ids.pop()
    else:
        header["license"] = "other"
        header["license_name"] = "per-source"
        header["license_link"] = "README.md"  # the per-source table below
    download = sum(f.stat().st_size for f in files)
    header.update({
        "pretty_name": pretty_name,
        "task_categories": ["image-classification"],
        "tags": ["faces", "face-mask", "low-resolution", "lrfp"],
        "size_categories": [size_category(total)],
        "configs": [{
            "config_name": "default",
            "data_files": [{"split": s, "path": f"data/{s}-*"} for s in split_sizes],
        }],
        "dataset_info": {
            "features": feats._to_yaml_list(),
            "splits": [{"name": s, "num_bytes": v["num_bytes"], "num_examples": v["num_examples"]}
                       for s, v in split_sizes.items()],
            "download_size": download,
            "dataset_size": sum(v["num_bytes"] for v in split_sizes.values()),
        },
    })
    return header


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _q(values: list[int]) -> str:
    q = quantiles(values)
    return " / ".join(f"{v:g}" for v in q) if q else "-"


def _sources_section(store: Store, rows: list[Any], annotations_only: bool) -> str:
    per_source = Counter(r["source_name"] for r in rows)
    out = []
    for s in store.sources():
        if s["name"] not in per_source:
            continue
        where = s["url"] or (f"local folder `{Path(s['path']).name}`" if s["path"] else "")
        lic = s["license"] or "**unknown** (pixels not published)"
        res = f"{s['width']}x{s['height']}" if s["width"] else ""
        out.append([s["name"], s["kind"], where, s["title"] or "", res, lic, per_source[s["name"]]])
    text = _table(["source", "kind", "where", "title", "resolution", "license", "crops"], out)
    if not annotations_only:
        text += ("\n\nEach crop keeps the license of its source (above). Publishing the pixels here relies on those "
                 "licenses; the annotations (boxes, times, labels) are released under the same terms.")
    return text


def _detector_section(store: Store, rows: list[Any]) -> str:
    dets = Counter((r["detector"], r["model_sha256"]) for r in rows)
    lines = []
    detected = [(d, m, n) for (d, m), n in dets.items() if d]
    if detected:
        lines.append(_table(["detector", "model sha256", "crops"], [[d, f"`{m}`" if m else "", n] for d, m, n in detected]))
        scores = [r["score"] for r in rows if r["score"] is not None]
        if scores:
            lines.append(f"\nDetection scores of the published crops: min {min(scores):.3f}, "
                         f"median {sorted(scores)[len(scores) // 2]:.3f}, max {max(scores):.3f}.")
    undetected = sum(n for (d, _), n in dets.items() if not d)
    if undetected and not detected:
        lines.append(f"No face detector was used and no detection threshold applies: all {undetected} crops are "
                     "imported images (`lrfp import`), one face per image as the folder gave it.")
    elif undetected:
        lines.append(f"\n{undetected} crops have no detector: they are imported images (one face each), not detections.")
    metas = []
    for s in store.sources():
        if s["name"] in {r["source_name"] for r in rows} and s["kind"] == "video":
            meta = json.loads(s["meta"] or "{}")
            settings = dict(meta.get("settings") or {})
            if meta.get("downscale"):
                settings["downscaled"] = "{}x{} -> {}x{}".format(*meta["downscale"]["from"], *meta["downscale"]["to"])
            if settings:
                metas.append(f"- `{s['name']}`: " + ", ".join(f"{k} = `{v}`" for k, v in sorted(settings.items())))
    if metas:
        lines.append("\nSettings `lrfp fetch` recorded for each video (sampling interval `every_s`, detector score "
                     "threshold `min_score`, smallest face `min_face` px, crop `margin`, crops kept `per_track`):\n")
        lines.extend(metas)
    return "\n".join(lines) if lines else "No detector information was recorded."


def _sampling_section(store: Store, rows: list[Any]) -> str:
    per_source = Counter(r["source_name"] for r in rows)
    frames = store.frames_per_source()
    table = []
    for s in store.sources():
        if s["name"] in per_source and s["kind"] == "video":
            table.append([s["name"], f"{s['width']}x{s['height']}" if s["width"] else "", s["fps"],
                          f"{s['duration_s']:.1f}" if s["duration_s"] else "", frames.get(s["id"], 0), per_source[s["name"]]])
    text = ""
    if table:
        text = ("Frames were sampled from each video, faces detected in them and cropped; the crops published are "
                "those of the split below.\n\n"
                + _table(["video", "resolution", "fps", "duration s", "frames sampled", "crops published"], table))
    folders = [s for s in store.sources() if s["name"] in per_source and s["kind"] == "folder"]
    if folders:
        text += ("\n\n" if text else "") + "Imported image folders (each image is one crop, stored as RGB PNG): " + ", ".join(
            f"`{s['name']}` ({per_source[s['name']]} crops)" for s in folders) + "."
    return text


def _labeling_section(store: Store, split: str, rows: list[Any]) -> str:
    published = {r["id"] for r in rows}
    events = [
        e for e in store.split_label_events(split) if e["crop_id"] in published
    ]
    current: dict[int, Any] = {}
    reviews: dict[int, list[Any]] = {}
    for e in events:
        if e["kind"] == "review":
            reviews.setdefault(e["crop_id"], []).append(e)
        else:
            current[e["crop_id"]] = e
    by_kind = Counter(e["kind"] for e in current.values())
    annotators = {e["annotator"] for e in current.values() if e["kind"] == "label"}
    parts = []
    if by_kind.get("import"):
        parts.append(f"{by_kind['import']} labels come from the class folders of imported image sets.")
    if by_kind.get("label"):
        parts.append(f"{by_kind['label']} labels were given by {len(annotators)} annotator(s) in `lrfp label` "
                     "(keyboard: with_mask, without_mask, unusable, skip; unusable and skipped crops are not published).")
        suggested = sum(1 for e in current.values() if e["kind"] == "label" and e["suggested"])
        parts.append(f"{suggested} of these were model-suggested and human-confirmed (a model's prediction shown "
                     "in `lrfp label`, accepted by the annotator with one key); the others were chosen by hand."
                     if suggested else "None of them was taken from a model's suggestion.")
    pairs = []
    for crop_id, revs in reviews.items():
        last = revs[-1]
        if crop_id in current and current[crop_id]["suggested"]:
            continue  # agreement measures people: a confirmed model suggestion is left out
        if last["label"] in LABELS and crop_id in current and current[crop_id]["label"] in LABELS:
            pairs.append((current[crop_id]["label"], last["label"]))
    if pairs:
        agree = sum(a == b for a, b in pairs) / len(pairs)
        parts.append(f"Agreement: {len(pairs)} crops got a blind second label; the two agree on {agree:.1%}"
                     + (f" (Cohen's kappa {k:.3f})." if (k := cohen_kappa(pairs, LABELS)) is not None else "."))
    else:
        parts.append("Agreement: no crop of this dataset has a second, blind label, so inter-annotator agreement "
                     "is not measured.")
    return " ".join(parts)


GROUP_CHAIN_TEXT = {
    "track": "face track where there is one, else its video, else its imported group id",
    "video": "video, else its face track, else its imported group id",
    "group": "imported group id, else its face track, else its video",
}


def _split_section(info: dict[str, Any]) -> str:
    p, r = info["params"], info["report"]
    if "leakage" not in r:
        return (f"Split `{info['name']}` (seed {info['seed']}) was not made by `lrfp split` (parameters: "
                f"`{json.dumps(p, sort_keys=True)}`), so no leakage audit was recorded for it.")
    leak = r["leakage"]
    nd = leak.get("near_duplicates", {})
    d = r.get("dedupe", {})
    ratios = "/".join(f"{x:g}" for x in p.get("ratios", []))
    lines = [
        f"Split `{info['name']}` made by `lrfp split` with seed {info['seed']}: "
        + (f"test size {p['test_size']}, train/validation by ratios {ratios}" if p.get("test_size") else f"ratios {ratios} (train/validation/test)")
        + (", classes balanced in every split" if p.get("balance") else "")
        + (f", faces of at least {p['min_face']} px" if p.get("min_face") else "")
        + ".",
        f"Stratified by label and **grouped**: every crop of a group is in the same split. The group of a crop is its "
        f"{GROUP_CHAIN_TEXT.get(p.get('group_by'), p.get('group_by'))}, else the crop itself (`--group-by {p.get('group_by')}`); "
        f"groups by key: {', '.join(f'{k} {v}' for k, v in r.get('group_keys', {}).items())}; "
        f"{r.get('groups')} groups, {r.get('mixed_label_groups')} of them with both classes.",
        f"Near-duplicates (64-bit pHash within {p.get('hash_distance')} bits) in different groups: "
        f"{d.get('merged_pairs', 0)} pair(s), handled by `--dedupe {p.get('dedupe')}`"
        + (" (their groups were merged before splitting)" if p.get("dedupe") == "move" else "")
        + (f" ({d.get('dropped', 0)} crops dropped)" if p.get("dedupe") == "drop" else "") + ".",
        "",
        "**Leakage audit** (recomputed after splitting):",
        f"- groups shared across splits: **{leak.get('shared_groups')}**",
        f"- near-duplicate pairs across splits (pHash <= {nd.get('max_distance')} bits): **{nd.get('pairs')}**",
    ]
    if leak.get("sources_in_several_splits"):
        lines.append(f"- sources with crops in several splits (expected when grouping finer than the source): "
                     f"{', '.join(leak['sources_in_several_splits'])}")
    for w in r.get("warnings", []):
        lines.append(f"- warning: {w}")
    return "\n".join(lines)


def _counts_section(rows: list[Any], split_sizes: dict[str, Any]) -> str:
    table = []
    for s in split_sizes:
        sub = [r for r in rows if r["subset"] == s]
        per = Counter(r["label"] for r in sub)
        table.append([s, *(per[lab] for lab in LABELS), len(sub), len({r["source_name"] for r in sub}),
                      _q([face_px(r) for r in sub])])
    per = Counter(r["label"] for r in rows)
    table.append(["**total**", *(per[lab] for lab in LABELS), len(rows), len({r["source_name"] for r in rows}),
                  _q([face_px(r) for r in rows])])
    return _table(["split", *LABELS, "crops", "sources", "face px min/p25/median/p75/max"], table)


FIELDS = """| column | type | meaning |
|---|---|---|
{image}| `label` | ClassLabel | 0 `with_mask`, 1 `without_mask` |
| `crop_sha256` | string | sha256 of the crop's PNG bytes (its id in the lrfp store) |
| `source` | string | source name (see Sources) |
| `url` | string | the video's URL; null for imported folders |
| `frame_index` | int | index of the frame in the video; null for imported images |
| `time_s` | float | time of the frame in the video, seconds; null for imported images |
| `box` | 4 ints | face box `x, y, w, h` in the frame's pixels; null for imported images |
| `face_px` | int | face size: the shorter side of the detected face box (the crop adds a margin), or of the image for imported crops |
| `group` | string | the group the split kept together (track, video or imported group) |
| `track` | string | face track id within the video; null when not tracked |
| `source_file` | string | imported images: the file's path below the imported folder (the first one read, when several files had the same pixels); null for video crops |
"""


def render_card(store: Store, split: str, rows: list[Any], feats: Any, split_sizes: dict[str, dict[str, int]],
                files: list[Path], cfg: Any) -> str:
    import yaml

    info = store.split_info(split)
    used = sorted({r["source_name"] for r in rows})
    licenses = [s["license"] for s in store.sources() if s["name"] in used]
    header = _yaml_header(feats, split_sizes, files, licenses, cfg.pretty_name, len(rows))
    per = Counter(r["label"] for r in rows)
    kinds = {s["kind"] for s in store.sources() if s["name"] in used}
    image_row = "| `image` | Image | the face crop, PNG, RGB, at the resolution it was cropped |\n"
    body = f"""# {cfg.pretty_name}

{len(rows)} face crops {_what_crops(store, rows, used)}, labeled
`with_mask` ({per['with_mask']}) or `without_mask` ({per['without_mask']}), from {len(used)} source(s).
{"**Annotations only**: this release has no pixels; see *Rebuilding the crops*." if cfg.annotations_only else "Images are embedded in the parquet files (PNG bytes)."}
Built with lrfp {__version__}, the software form of the study below.

## Origin

lrfp follows the protocol of {THESIS}: face crops from videos below 720p of people walking in
public places of Lima, two classes, a 1,600 / 80 / 320 (80% / 4% / 16%) split. The thesis's own
dataset (2,000 crops) was never published; lrfp rebuilds that kind of dataset with open tooling, and
its split is grouped so that one person's crops from consecutive frames (or one imported group) are
never in train and test at once (the thesis's per-image split allowed that, which inflates accuracy).
{_origin_note(kinds)}

## Sources and licenses

{_sources_section(store, rows, cfg.annotations_only)}

## How it was built

### Detector and thresholds

{_detector_section(store, rows)}

### Sampling

{_sampling_section(store, rows)}

### Labeling and agreement

{_labeling_section(store, split, rows)}

### Split and leakage audit

{_split_section(info)}

## Counts

{_counts_section(rows, split_sizes)}

## Fields

{FIELDS.format(image="" if cfg.annotations_only else image_row)}
Load it with `datasets.load_dataset("<this folder or repo>")`.
{_rebuild_section() if cfg.annotations_only else ""}
## Intended uses

- Benchmarking and training face-mask classifiers on **low-resolution** faces ({_size_note(rows)}),
  e.g. with `lrfp bench --dataset`.
- Studying how accuracy changes with face size (`face_px`) and how leakage-free splits change reported accuracy.

## Out-of-scope uses

- Identifying, tracking or profiling people; face recognition of any kind; inferring health, identity,
  ethnicity or any other attribute of the people shown.
- Enforcement against individuals (e.g. fining people without masks) or any decision about a person.
- Claims about mask compliance of a population: the sources are a few videos, not a sample.

## Privacy

{_privacy_lead(kinds)} The crops are mostly small and carry no names, but a face can still be
recognizable. lrfp publishes pixels only from sources with a recorded license (see *Sources and
licenses*); whoever publishes is responsible for that license allowing redistribution. Anyone shown
may ask the publisher (the owner of this repository) to remove their crops, giving the `crop_sha256`
or the source and time; removed crops should be gone from the next release. Do not try to identify
anyone.

## Citation

If you use this dataset, cite the thesis it follows:

> {THESIS}.
"""
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def _what_crops(store: Store, rows: list[Any], used: list[str]) -> str:
    """What the crops are, from the store's sources only: fetched videos and/or imported folders."""
    per_source = Counter(r["source_name"] for r in rows)
    kinds = {s["name"]: s["kind"] for s in store.sources() if s["name"] in used}
    videos = [n for n, k in kinds.items() if k == "video"]
    folders = [n for n, k in kinds.items() if k == "folder"]
    parts = []
    if videos:
        parts.append(f"detected in frames of {len(videos)} video(s) fetched with `lrfp fetch` "
                     f"({sum(per_source[n] for n in videos)} crops)")
    if folders:
        sides = []
        for s in store.sources():
            if s["name"] in folders:
                side = (json.loads(s["meta"] or "{}").get("import_settings") or {}).get("max_side")
                sides.append(f"`{s['name']}`" + (f", downscaled to at most {side} px" if side else ""))
        parts.append(f"from {len(folders)} imported image folder(s) ({'; '.join(sides)}; "
                     f"{sum(per_source[n] for n in folders)} crops, one face per image)")
    return " and ".join(parts) or "from the store's sources"


def _origin_note(kinds: set[str]) -> str:
    if kinds == {"folder"}:
        return ("\nThis release is **not** street footage: every crop comes from an imported image folder (see "
                "*Sources and licenses*), so it follows the thesis's labels and split protocol, not its sources.")
    if "folder" in kinds:
        return ("\nSome crops come from imported image folders rather than video (see *Sources and licenses*); "
                "only the video crops follow the thesis's sampling.")
    return ""


def _privacy_lead(kinds: set[str]) -> str:
    if kinds == {"folder"}:
        return ("These are faces of real people from imported image folders; who took the photos and whether the "
                "people shown agreed is only what those folders' sources say (see *Sources and licenses*).")
    lead = ("These are faces of real people in the fetched videos, who were most likely never asked whether they "
            "want to be in a dataset.")
    if "folder" in kinds:
        lead += " The imported folders' photos carry whatever consent their sources state."
    return lead


def _size_note(rows: list[Any]) -> str:
    sides = sorted(face_px(r) for r in rows)
    if not sides:
        return "no crops"
    median = sides[len(sides) // 2]
    return f"median face size here: {median} px on the shorter side"


def _rebuild_section() -> str:
    return """
## Rebuilding the crops

Like Kinetics and VoxCeleb, this release lists where each face is rather than the face itself. For each
row, the video `url`, the frame `time_s` / `frame_index` and the `box` locate the face; `lrfp fetch` with a
manifest of these URLs downloads the videos and cuts the same crops (check them against `crop_sha256`;
a re-encoded upload may give other bytes). Rows from imported folders (`url` null) cannot be rebuilt this way:
their `source_file` names the file below the imported folder (`source`) each crop was read from.
"""


def write_card(path: Path, store: Store, split: str, rows: list[Any], feats: Any,
               split_sizes: dict[str, dict[str, int]], files: list[Path], cfg: Any) -> None:
    path.write_text(render_card(store, split, rows, feats, split_sizes, files, cfg), encoding="utf-8")
