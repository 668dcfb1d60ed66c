"""The main job end to end, as a user runs it: fetch -> label -> split -> publish -> bench on the published set.

Every stage is the real one: yt-dlp downloads the shared clips from a server on 127.0.0.1, MediaPipe
finds the faces, the Textual app takes the keys, `datasets` writes and reads the parquet, torch trains.
Nobody in the shared clips wears a mask, so the with_mask class comes from a few SMFD images imported
with a license recorded only inside this temporary store (SMFD itself is never published).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fetch_helpers import serve

from lrfp.store import open_store

CLIPS = {"corridor": "intel_face-demographics-walking-and-pause.gif", "stage": "face_recognition_short_hamilton_clip.mp4"}


def lrfp(*args: str, data: Path) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "lrfp", *args, "-d", str(data)], capture_output=True, text=True)
    assert r.returncode == 0, f"lrfp {' '.join(args)}: {r.stderr[-2000:]}"
    return r


@pytest.mark.slow
async def test_fetch_label_split_publish_bench(shared_dir: Path, smfd_dir: Path, tmp_path: Path) -> None:
    from lrfp.label.app import LabelApp
    from lrfp.label.session import LabelConfig, LabelSession

    data = tmp_path / "data"
    manifest = tmp_path / "m.csv"
    with serve(shared_dir / "data" / "videos") as base:
        manifest.write_text("url,id,license\n" + "".join(f"{base}/{clip},{name},cc-by-4.0\n" for name, clip in CLIPS.items()))
        lrfp("fetch", str(manifest), "--models-dir", str(shared_dir / "models"), data=data)

    with open_store(data) as store:
        fetched = store.count_crops()
        assert fetched >= 10
        app = LabelApp(LabelSession(store, LabelConfig(annotator="tester")))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press(*["n"] * fetched)
        labels = [r[0] for r in store.query("SELECT label FROM current_labels")]
        assert labels == ["without_mask"] * fetched  # one committed event per key, nothing lost

    masked = tmp_path / "masked" / "with_mask"
    masked.mkdir(parents=True)
    for f in sorted((smfd_dir / "with_mask").glob("*-with-mask.jpg"))[:fetched]:
        (masked / f.name).symlink_to(f)
    lrfp("import", str(masked.parent), "--source", "smfd-test", "--license", "test-only", "--max-side", "48", data=data)

    split = json.loads(lrfp("split", "--seed", "1", "--json", data=data).stdout)
    assert split["leakage"]["shared_groups"] == 0
    assert split["leakage"]["near_duplicates"]["pairs"] == 0

    out = tmp_path / "published"
    lrfp("publish", "--out", str(out), data=data)
    from datasets import load_dataset

    ds = load_dataset(str(out))
    assert sum(len(ds[s]) for s in ds) == 2 * fetched
    assert set(ds["train"].features["label"].names) == {"with_mask", "without_mask"}

    results = tmp_path / "bench"
    lrfp("bench", "--model", "model3", "--protocol", "quick", "--epochs", "2", "--dataset", str(out), "--out", str(results), data=data)
    rows = [json.loads(line) for line in (results / "results.jsonl").read_text().splitlines()]
    final = [r for r in rows if r["model"] == "model3" and r["epochs"] == 2 and r.get("eval_set", "test") == "test"]
    assert final and not final[0].get("error")
    assert final[0]["n_test"] == len(ds["test"])
    assert 0.0 <= final[0]["acc_ci_low"] <= final[0]["accuracy"] <= final[0]["acc_ci_high"] <= 1.0
