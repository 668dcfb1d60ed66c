"""The dataset card states only what the store's sources show (issue 11): folders vs videos, detectors used."""

from __future__ import annotations

from pathlib import Path

from publish_helpers import video_store  # noqa: F401 (a fixture)

from lrfp.publish import PublishConfig, export_dataset
from lrfp.split import SplitConfig, grouped_split


def section(card: str, heading: str) -> str:
    return card.split(heading, 1)[1].split("\n#", 1)[0].strip()


def test_card_of_an_smfd_only_store_claims_no_footage_and_no_detector(small_store, tmp_path: Path):
    grouped_split(small_store, SplitConfig(seed=0, dedupe="off", hash_distance=0))
    small_store.upsert_source("smfd", "folder", license="local-test-only")  # the card is written locally only
    export_dataset(small_store, PublishConfig(out=tmp_path / "hub", annotations_only=True))
    card = (tmp_path / "hub" / "README.md").read_text()
    n = len(small_store.split_crops("default"))
    intro = card.split("# Low-Res Faces in Peru (lrfp)", 1)[1].split("\n## ", 1)[0]
    assert f"{n} face crops from 1 imported image folder(s) (`smfd`, downscaled to at most 48 px; {n} crops" in intro
    assert "footage" not in intro and "public places" not in intro and "video" not in intro
    assert section(card, "### Detector and thresholds") == (
        f"No face detector was used and no detection threshold applies: all {n} crops are imported images "
        "(`lrfp import`), one face per image as the folder gave it.")
    assert "This release is **not** street footage" in section(card, "## Origin")
    assert "filmed in public places" not in card
    assert "faces of real people from imported image folders" in section(card, "## Privacy")


def test_card_of_a_fetched_store_names_its_videos_and_detector(video_store, tmp_path: Path):  # noqa: F811
    export_dataset(video_store, PublishConfig(out=tmp_path / "hub", annotations_only=True))
    card = (tmp_path / "hub" / "README.md").read_text()
    intro = card.split("\n## ", 1)[0]
    used = {r["source_name"] for r in video_store.query(
        "SELECT s.name AS source_name FROM split_assignments a JOIN crops c ON c.id = a.crop_id "
        "JOIN sources s ON s.id = c.source_id")}
    kinds = [s["kind"] for s in video_store.sources() if s["name"] in used]
    assert f"detected in frames of {kinds.count('video')} video(s) fetched with `lrfp fetch`" in intro
    assert f"from {kinds.count('folder')} imported image folder(s)" in intro  # this store mixes both
    assert "Some crops come from imported image folders rather than video" in section(card, "## Origin")
    det = section(card, "### Detector and thresholds")
    assert det.startswith("| detector | model sha256 | crops |") and "No face detector" not in det
