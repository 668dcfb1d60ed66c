"""`lrfp split` on a store filled by the real `lrfp fetch`: tracks as groups, whole videos as groups."""

from __future__ import annotations

from collections import defaultdict

import pytest

from lrfp.errors import SplitError
from lrfp.split import SplitConfig, grouped_split
from publish_helpers import video_store  # noqa: F401 (a fixture)


def test_tracks_stay_in_one_split(video_store) -> None:
    result = grouped_split(video_store, SplitConfig(name="tracks", seed=4))
    rows = video_store.split_crops("tracks")
    subsets = defaultdict(set)
    for r in rows:
        if r["track_id"]:
            subsets[r["track_id"]].add(r["subset"])
    assert subsets and all(len(s) == 1 for s in subsets.values())
    assert result.report["group_keys"]["track"] == sum(1 for r in rows if r["track_id"])
    assert result.report["leakage"]["shared_groups"] == 0


def test_group_by_video_with_two_videos_cannot_fill_three_splits(video_store) -> None:
    # Every without_mask crop comes from one of two videos: a whole video is a group larger than any split.
    with pytest.raises(SplitError) as e:
        grouped_split(video_store, SplitConfig(name="videos", group_by="video"))
    message = str(e.value)
    assert "split got no without_mask crop" in message
    biggest = max(r["n"] for r in video_store.query(
        "SELECT COUNT(*) AS n FROM crops c JOIN current_labels cl ON cl.crop_id = c.id "
        "WHERE cl.label = 'without_mask' GROUP BY c.source_id"))
    assert f"(largest {biggest} crops)" in message
    assert "videos" not in video_store.split_names()
