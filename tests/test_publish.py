"""`lrfp publish` on real stores: the Hub layout loads back with `datasets`, the card says how it was
made, licenses are enforced, bad input is refused, and the push is tested up to the network edge."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lrfp.errors import PublishError, PublishInputError
from lrfp.publish import FEATURE_NAMES, PublishConfig, PushConfig, export_dataset, publish_dataset
from lrfp.split import SplitConfig, grouped_split
from lrfp.store import face_px
from publish_helpers import closed_port, fake_hub, video_store  # noqa: F401 (a fixture)

SECRET = "hf_testtoken_never_shown_0123456789"


def lrfp(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT")}
    return subprocess.run(
        [sys.executable, "-m", "lrfp", *args], capture_output=True, text=True,
        env={**base, "COLUMNS": "200", **(env or {})},
    )


def read_card(out: Path) -> tuple[dict, str]:
    text = (out / "README.md").read_text()
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def test_publish_of_a_fetched_store_loads_back_with_datasets(video_store, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "hub"
    result = export_dataset(video_store, PublishConfig(out=out))
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]

    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert list(ds["train"].features) == list(FEATURE_NAMES)
    assert ds["train"].features["label"].names == ["with_mask", "without_mask"]
    assert isinstance(ds["train"].features["image"], datasets.Image)

    # Same rows as the store's split: same crops in the same subsets, same labels, same pixels, same provenance.
    stored = {r["sha256"]: r for r in video_store.query(
        """SELECT c.*, a.subset, cl.label, s.name AS source_name, s.url AS source_url, s.kind AS source_kind
           FROM split_assignments a JOIN crops c ON c.id = a.crop_id JOIN sources s ON s.id = c.source_id
           JOIN current_labels cl ON cl.crop_id = c.id WHERE a.split_name = 'default'""")}
    seen = set()
    for subset in ("train", "validation", "test"):
        raw = ds[subset].cast_column("image", datasets.Image(decode=False))
        for row in raw:
            r = stored[row["crop_sha256"]]
            seen.add(row["crop_sha256"])
            assert r["subset"] == subset
            assert hashlib.sha256(row["image"]["bytes"]).hexdigest() == r["sha256"]  # the stored PNG, embedded
            assert ds[subset].features["label"].int2str(row["label"]) == r["label"]
            assert row["source"] == r["source_name"]
            assert row["face_px"] == face_px(r)
            if r["source_kind"] == "video":
                assert row["url"] == r["source_url"] and row["url"].startswith("http://127.0.0.1:")
                assert row["source_file"] is None  # a video crop has url/frame/box instead
                assert row["box"] == [r["box_x"], r["box_y"], r["box_w"], r["box_h"]]
                assert row["time_s"] == pytest.approx(r["time_s"]) and row["frame_index"] == r["frame_index"]
                assert row["track"] == r["track_id"] and row["group"].startswith("track:")
            else:
                assert row["url"] is None and row["box"] is None and row["time_s"] is None
    assert seen == set(stored)
    assert result.total == len(stored)
    assert ds["train"][0]["image"].mode == "RGB"


def test_large_splits_are_sharded_and_load_back_whole(video_store, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "hub"
    result = export_dataset(video_store, PublishConfig(out=out, max_shard_bytes=100_000))
    train = sorted(p.name for p in (out / "data").glob("train-*"))
    assert len(train) > 1
    assert train == [f"train-{i:05d}-of-{len(train):05d}.parquet" for i in range(len(train))]
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert len(ds["train"]) == sum(result.counts["train"].values())
    assert len(set(ds["train"]["crop_sha256"])) == len(ds["train"])


def test_card_header_and_text(video_store, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "hub"
    export_dataset(video_store, PublishConfig(out=out))
    head, body = read_card(out)
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert head["task_categories"] == ["image-classification"]
    assert head["size_categories"] == ["n<1K"]
    assert head["license"] == "other"  # cc-by-4.0 and mit sources: the per-source table says which is which
    assert [c["split"] for c in head["configs"][0]["data_files"]] == ["train", "validation", "test"]
    info = head["dataset_info"]
    assert datasets.Features._from_yaml_list(info["features"]) == ds["train"].features
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {k: len(v) for k, v in ds.items()}
    assert info["download_size"] == sum(p.stat().st_size for p in (out / "data").iterdir())

    for heading in ("## Origin", "## Sources and licenses", "### Detector and thresholds", "### Sampling",
                    "### Labeling and agreement", "### Split and leakage audit", "## Counts",
                    "## Intended uses", "## Out-of-scope uses", "## Privacy", "## Citation"):
        assert heading in body, heading
    # Sources with their licenses, the detector with its model hash and thresholds, read from the store.
    assert "| intel | video | http://127.0.0.1:" in body and "| cc-by-4.0 |" in body and "| mit |" in body
    sha = video_store.query("SELECT DISTINCT model_sha256 FROM crops WHERE model_sha256 IS NOT NULL")[0][0]
    assert f"`{sha}`" in body
    assert "min_score = `0.5`" in body and "every_s = `0.5`" in body
    assert "5 crops got a blind second label; the two agree on 100.0%" in body
    assert "groups shared across splits: **0**" in body
    assert "near-duplicate pairs across splits (pHash <= 6 bits): **0**" in body
    assert "Coazaca Bustamante & Ali Vilca" in body
    assert "faces of real people" in body
    n_train = len(ds["train"])
    assert f"| train | " in body and f"| {n_train} |" in body


def test_unknown_license_refuses_and_names_the_source(small_store, tmp_path: Path) -> None:
    grouped_split(small_store, SplitConfig())
    out = tmp_path / "hub"
    with pytest.raises(PublishError) as e:
        export_dataset(small_store, PublishConfig(out=out))
    folder = small_store.source("smfd")["path"]
    assert str(e.value) == (
        f"source(s) with unknown license: smfd ({folder}). Their face crops cannot be published; record a license "
        "(`lrfp import ... --license`, or the manifest's license column for `lrfp fetch`), make a split without "
        "them, or publish with --annotations-only"
    )
    assert not out.exists()


def test_annotations_only_has_no_pixels_and_loads_back(small_store, tmp_path: Path) -> None:
    import datasets

    grouped_split(small_store, SplitConfig())
    out = tmp_path / "ann"
    result = export_dataset(small_store, PublishConfig(out=out, annotations_only=True))
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert list(ds["train"].features) == [n for n in FEATURE_NAMES if n != "image"]
    assert sum(len(v) for v in ds.values()) == result.total == len(small_store.split_crops("default"))
    blob = b"".join(p.read_bytes() for p in (out / "data").iterdir())
    assert b"\x89PNG" not in blob  # no crop's pixels anywhere
    head, body = read_card(out)
    assert "image" not in [f["name"] for f in head["dataset_info"]["features"]]
    assert "**Annotations only**" in body and "## Rebuilding the crops" in body
    assert "**unknown** (pixels not published)" in body


def test_annotations_only_rows_name_their_imported_file(small_store, tmp_path: Path) -> None:
    """A new user could not map annotations-only rows of an imported folder back to its files (url, frame,
    box and track are all null for them): each row names the file below the imported folder."""
    import datasets

    grouped_split(small_store, SplitConfig())
    folder = Path(small_store.source("smfd")["path"])
    out = tmp_path / "ann"
    export_dataset(small_store, PublishConfig(out=out, annotations_only=True))
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    rows = [r for part in ds.values() for r in part]
    names = ds["train"].features["label"].names
    stored = {r["sha256"]: r["original"] for r in small_store.query("SELECT sha256, original FROM crops")}
    for r in rows:
        assert r["source_file"] == stored[r["crop_sha256"]] and r["url"] is None
        assert (folder / r["source_file"]).is_file(), r["source_file"]
        assert r["source_file"].split("/")[0] == names[r["label"]]  # the class folder it was imported from
    assert len({r["source_file"] for r in rows}) == len(rows)
    _, body = read_card(out)
    assert "| `source_file` | string |" in body and "their `source_file` names the file" in body


def test_no_split(tmp_path: Path, small_store) -> None:
    with pytest.raises(PublishError) as e:
        export_dataset(small_store, PublishConfig(out=tmp_path / "hub"))
    assert str(e.value) == "nothing to publish: the store has no split yet: run `lrfp split` first"
    r = lrfp("publish", "--data-dir", str(small_store.root), "--out", str(tmp_path / "hub"))
    assert r.returncode == 2  # the store given cannot be published as it is (like an unknown --split)
    assert r.stderr.strip().splitlines()[-1] == "Error: nothing to publish: the store has no split yet: run `lrfp split` first"
    assert not (tmp_path / "hub").exists()


def test_unknown_split_name(video_store, tmp_path: Path) -> None:
    with pytest.raises(PublishError) as e:
        export_dataset(video_store, PublishConfig(out=tmp_path / "hub", split="nope"))
    known = ", ".join(video_store.split_names())
    assert str(e.value) == f"nothing to publish: no split named 'nope' (known: {known})"


def test_private_or_gated_without_repo_id(video_store, tmp_path: Path) -> None:
    r = lrfp("publish", "--data-dir", str(video_store.root), "--out", str(tmp_path / "hub"), "--gated")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "Error: --private and --gated need --repo-id USER/NAME"
    assert not (tmp_path / "hub").exists()


def test_non_empty_out_needs_overwrite(video_store, tmp_path: Path) -> None:
    out = tmp_path / "hub"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(PublishError) as e:
        export_dataset(video_store, PublishConfig(out=out))
    assert str(e.value) == f"--out {out} is not empty (1 entries); use --overwrite to replace its README.md and data/"
    assert [p.name for p in out.iterdir()] == ["mine.txt"]

    export_dataset(video_store, PublishConfig(out=out, overwrite=True))
    (out / "data" / "stale-00000-of-00001.parquet").write_bytes(b"from an older export")
    export_dataset(video_store, PublishConfig(out=out, overwrite=True))
    # README.md and data/ are replaced as a whole (no stale shard); other files (a clone's .git, notes) stay.
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data", "mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]
    assert not list(tmp_path.glob(".hub.*"))  # the staging folder is gone


def test_relabeled_crops_are_left_out_and_said(video_store, tmp_path: Path) -> None:
    crop_id = video_store.split_crops("default", "train")[0]["id"]
    video_store.add_label(crop_id, "unusable", "tester")
    try:
        result = export_dataset(video_store, PublishConfig(out=tmp_path / "hub"))
        assert result.left_out == {"relabeled since the split": 1}
        assert result.total == len(video_store.split_crops("default")) - 1
    finally:
        video_store.add_label(crop_id, "without_mask", "tester")


# -- push (the Hub is a local server: the network edge) -----------------------------------------------


@pytest.mark.parametrize("repo_id", ["no-slash", "a/b/c", "user/na me", "user/-x", "user/x..y", "/name", "user/x.git"])
def test_invalid_repo_id(repo_id: str, video_store, tmp_path: Path) -> None:
    with pytest.raises(PublishError) as e:
        publish_dataset(video_store, PublishConfig(out=tmp_path / "hub"), PushConfig(repo_id=repo_id))
    assert str(e.value) == (
        f"--repo-id {repo_id!r} is not a Hub dataset id: expected USER/NAME made of letters, digits, '-', '_' "
        "and '.', e.g. jdoe/low-res-faces-peru"
    )
    assert not (tmp_path / "hub").exists()  # checked before anything is written


def test_no_token(video_store, tmp_path: Path) -> None:
    r = lrfp("publish", "--data-dir", str(video_store.root), "--out", str(tmp_path / "hub"), "--repo-id", "jdoe/lrfp",
             env={"HF_HOME": str(tmp_path / "hf-home")})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: no Hugging Face token: set HF_TOKEN or run `hf auth login` first "
        "(lrfp only passes the token to huggingface_hub; it never prints or stores it)"
    )
    assert not (tmp_path / "hub").exists()


def test_offline_fails_fast_with_a_clear_message(video_store, tmp_path: Path, monkeypatch) -> None:
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)  # the subprocesses inherit this environment
    port = closed_port()
    r = lrfp("publish", "--data-dir", str(video_store.root), "--out", str(tmp_path / "hub"), "--repo-id", "jdoe/lrfp",
             env={"HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": SECRET, "HF_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: cannot reach the Hugging Face Hub at http://127.0.0.1:{port} (Connection refused): "
        "check your network connection; nothing was uploaded"
    )
    assert "Traceback" not in r.stderr and SECRET not in r.stdout + r.stderr
    assert not (tmp_path / "hub").exists()  # refused before the export, so it fails fast

    r = lrfp("publish", "--data-dir", str(video_store.root), "--out", str(tmp_path / "hub"), "--repo-id", "jdoe/lrfp",
             env={"HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": SECRET, "HF_HUB_OFFLINE": "1"})
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: cannot push: HF_HUB_OFFLINE is set (offline mode); unset it to publish to the Hub")


def test_push_creates_a_private_gated_repo_and_uploads_the_folder(video_store, tmp_path: Path) -> None:
    out = tmp_path / "hub"
    stale = "data/train-00001-of-00002.parquet"  # from an earlier, larger push: must not survive this one
    with fake_hub(remote_files=["README.md", stale]) as hub:
        # Logging as loud as it goes (lrfp --verbose, huggingface_hub debug): the token must still not show.
        r = lrfp("--verbose", "publish", "--data-dir", str(video_store.root), "--out", str(out),
                 "--repo-id", "jdoe/lr-fp", "--private", "--gated",
                 env={"HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": SECRET, "HF_ENDPOINT": hub.url,
                      "HF_HUB_VERBOSITY": "debug"})
        assert r.returncode == 0, r.stderr
        assert f"Pushed to {hub.url}/datasets/jdoe/lr-fp" in r.stdout
        # The token goes in the Authorization header of the API calls, and nowhere else.
        api_calls = [q for q in hub.requests if q.path.startswith(("/api/whoami", "/api/repos/", "/api/datasets/"))]
        assert [q.path.split("?")[0] for q in api_calls] == [
            "/api/whoami-v2", "/api/repos/create", "/api/datasets/jdoe/lr-fp/settings",
            "/api/datasets/jdoe/lr-fp/tree/main", "/api/datasets/jdoe/lr-fp/preupload/main",
            "/api/datasets/jdoe/lr-fp/commit/main"]
        assert {q.headers.get("authorization") for q in api_calls} == {f"Bearer {SECRET}"}
        assert SECRET not in r.stdout + r.stderr
        assert not any(SECRET.encode() in p.read_bytes() for p in out.rglob("*") if p.is_file())
        assert not (tmp_path / "hf-home").exists() or not any(
            SECRET.encode() in p.read_bytes() for p in (tmp_path / "hf-home").rglob("*") if p.is_file())

        assert hub.json_bodies("POST", "/api/repos/create") == [
            {"name": "lr-fp", "organization": "jdoe", "visibility": "private", "type": "dataset"}]
        assert hub.json_bodies("PUT", "/api/datasets/jdoe/lr-fp/settings") == [{"gated": "auto"}]
        commit = next(q for q in hub.requests if q.method == "POST" and "/commit/main" in q.path)
        uploaded, deleted = {}, []
        for line in commit.body.decode().splitlines():
            entry = json.loads(line)
            if entry["key"] == "file":
                uploaded[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
            elif entry["key"] == "deletedFile":
                deleted.append(entry["value"]["path"])
        local = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert uploaded == local
        assert deleted == [stale]


def test_rejected_token_is_said(video_store, tmp_path: Path) -> None:
    with fake_hub(status_for_whoami=401) as hub:
        with pytest.raises(PublishError) as e:
            publish_dataset(video_store, PublishConfig(out=tmp_path / "hub"),
                            PushConfig(repo_id="jdoe/lr-fp", endpoint=hub.url))
    assert str(e.value) == (
        "the Hugging Face Hub rejected the token while checking the token (HTTP 401): log in again with "
        "`hf auth login` or set a valid HF_TOKEN"
    )


@pytest.fixture(autouse=True)
def _token_for_in_process_pushes(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)


def test_a_bad_config_is_refused_before_the_hub_is_contacted(small_store, tmp_path: Path) -> None:
    grouped_split(small_store, SplitConfig())
    out = tmp_path / "hub"
    # The push target is unreachable: had the config not been checked first, the error would name the Hub.
    push = PushConfig(repo_id="jdoe/lr-fp", endpoint="http://127.0.0.1:9")
    with pytest.raises(PublishInputError) as e:
        publish_dataset(small_store, PublishConfig(out=out, pretty_name=" ", annotations_only=True), push)
    assert str(e.value) == "--pretty-name must not be empty (it is the dataset card's title)"
    assert not out.exists()
