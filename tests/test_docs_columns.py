"""docs/publish.md names every column `lrfp publish` writes (it omitted `source_file`, tester's bug 18)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_publish_doc_names_every_published_column() -> None:
    from lrfp.publish.export import FEATURE_NAMES

    doc = (REPO / "docs" / "publish.md").read_text()
    assert [c for c in FEATURE_NAMES if f"`{c}`" not in doc] == []
