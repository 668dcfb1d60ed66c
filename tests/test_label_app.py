"""The labeling app through Textual's pilot: keys in, then assertions on the store."""

from __future__ import annotations

import pytest
from label_helpers import events, source_time_order, unlabeled_store

from lrfp.label.app import LabelApp
from lrfp.label.grid_screen import GridCell, GridScreen
from lrfp.label.session import LabelConfig, LabelSession
from lrfp.label.too_small_screen import TooSmallScreen
from lrfp.label.widgets import PixelImage
from lrfp.store import open_store

SIZE = (120, 40)


@pytest.fixture
def store(tmp_path, smfd_dir):
    s = unlabeled_store(tmp_path / "data", smfd_dir, n=24, with_frame=True)
    yield s
    s.close()


def app_for(store, **cfg) -> LabelApp:
    return LabelApp(LabelSession(store, LabelConfig(**{"annotator": "ana", **cfg})))


async def test_keys_label_and_auto_advance(store):
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "n", "x", "s", "space")
        assert app.session.current_id == ids[5]
        progress = str(app.screen.query_one("#progress").render())
        assert "labeled 3/24" in progress and "this session 5 (" in progress and "unlabeled 19" in progress
    assert events(store) == [
        (ids[0], "with_mask", "ana", "label"), (ids[1], "without_mask", "ana", "label"),
        (ids[2], "unusable", "ana", "label"), (ids[3], "skip", "ana", "label"), (ids[4], "skip", "ana", "label"),
    ]


async def test_undo_and_backspace_restore_and_go_back(store):
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "n", "u")
        assert app.session.current_id == ids[1]
        await pilot.press("backspace")
        assert app.session.current_id == ids[0]
        await pilot.press("x")
    assert events(store) == [
        (ids[0], "with_mask", "ana", "label"), (ids[1], "without_mask", "ana", "label"),
        (ids[1], None, "ana", "label"), (ids[0], None, "ana", "label"), (ids[0], "unusable", "ana", "label"),
    ]
    assert store.current_label(ids[1]) is None


async def test_left_right_move_without_labeling_and_relabel(store):
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "right", "right", "left", "left", "left")
        assert app.session.current_id == ids[0]
        meta = str(app.screen.query_one("#meta").render())
        assert "with_mask ana label" in meta  # the crop's label history
        await pilot.press("n")  # relabel the first crop
    assert events(store) == [(ids[0], "with_mask", "ana", "label"), (ids[0], "without_mask", "ana", "label")]


async def test_grid_page_label_rest_and_enter(store):
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await pilot.pause()
        grid = app.screen
        assert isinstance(grid, GridScreen)
        page = list(grid.page)
        cols, rows = grid.page_shape()
        assert page == ids[: cols * rows] and len(page) == 18  # 6 x 3 cells of 20x12 in 120x40
        await pilot.press("m", "right", "down", "x", "n", "a")
        # m on cell 0; cursor to 1, right to 2, down to 8; x on 8; cursor 9: n; a -> every unlabeled cell n
        assert {store.current_label(i) for i in page} == {"with_mask", "unusable", "without_mask"}
        assert store.current_label(page[0]) == "with_mask" and store.current_label(page[8]) == "unusable"
        assert sum(store.current_label(i) == "without_mask" for i in page) == 16
        await pilot.press("enter")
        await pilot.pause()
        assert grid.page == ids[18:24]
        await pilot.press("u")  # undo what `a` did: the whole page-1 copy (that page is no longer shown)
    copied = [i for i in page if i not in (page[0], page[8], page[9])]
    assert len(copied) == 15 and len(events(store)) == 18 + 15
    assert all(store.current_label(i) is None for i in copied)
    assert [store.current_label(i) for i in (page[0], page[8], page[9])] == ["with_mask", "unusable", "without_mask"]


async def test_grid_u_after_a_restores_the_whole_page_on_screen(store):
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await pilot.pause()
        grid = app.screen
        page = list(grid.page)
        await pilot.press("m", "a")  # m on cell 0, then a: 17 more crops with_mask
        assert all(store.current_label(i) == "with_mask" for i in page)
        await pilot.press("u")
        await pilot.pause()
        assert store.current_label(page[0]) == "with_mask"
        assert all(store.current_label(i) is None for i in page[1:])
        assert "17 crops are back to" in str(grid.query_one("#status").render())
        labels = [str(c.query_one(".cell-label").render()).strip() for c in grid.query(GridCell)]
        assert labels[0] != labels[1] and len(set(labels[1:])) == 1  # cells redrawn as unlabeled
        await pilot.press("u")  # the next undo takes back the single m
        assert store.current_label(page[0]) is None
        assert app.session.summary().session_labels == 0


async def test_summary_counts_crops_not_key_presses(store):
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x", "left", "s", "n", "m", "left", "x")  # crop 0: x then s; crop 1: n; crop 2: m then x
    summary = app.session.summary()
    assert summary.session_labels == 3
    assert summary.session_counts == {"skip": 1, "without_mask": 1, "unusable": 1}
    assert [store.current_label(i) for i in ids[:3]] == ["skip", "without_mask", "unusable"]


async def test_grid_a_needs_a_label_first(store):
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert "label a cell first" in str(app.screen.query_one("#status").render())
    assert events(store) == []


async def test_filters_source_and_label(store):
    cam_b = source_time_order(store, "cam-b")
    app = app_for(store, source="cam-b")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "n", "m")
    assert [e[0] for e in events(store)] == cam_b[:3]
    app = app_for(store, label="with_mask")
    async with app.run_test(size=SIZE) as pilot:
        assert app.session.ids == [cam_b[0], cam_b[2]]
        await pilot.press("n")  # review one class: fix a wrong with_mask
    assert store.current_label(cam_b[0]) == "without_mask"


async def test_review_mode_is_blind_and_writes_review_events(store):
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "n", "m")
    app = app_for(store, annotator="bob", review=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        meta = str(app.screen.query_one("#meta").render())
        assert "ana" not in meta and "with_mask" not in meta and "unlabeled" in meta
        await pilot.press("m", "m")
        assert app.session.current_id == ids[2]  # the third crop ana labeled; the unlabeled ones are not shown
    assert events(store, "review") == [(ids[0], "with_mask", "bob", "review"), (ids[1], "with_mask", "bob", "review")]
    assert store.current_label(ids[1]) == "without_mask"  # reviews never overwrite the label


async def test_context_strip_shows_the_frame_and_metadata(store):
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = app.session.info(app.session.current_id)
        context = app.screen.query_one("#context", PixelImage)
        meta = str(app.screen.query_one("#meta").render())
        assert first.frame_file is not None  # the helper gives the first crop its frame
        assert context._loaded is not None and context._loaded.image is not None
        face = min(first.box[2:])
        assert f"{face} px (crop {first.width}x{first.height})" in meta and first.source in meta and "0.90" in meta
        await pilot.press("m")
        meta = str(app.screen.query_one("#meta").render())
        assert "(no frame stored" in str(context.render())
    with_frame = store.query("SELECT id FROM crops WHERE frame_id IS NOT NULL")[0][0]
    app = app_for(store, only="all")
    async with app.run_test(size=SIZE) as pilot:
        app.session.go_to(with_frame)
        await pilot.press("right", "left")
        context = app.screen.query_one("#context", PixelImage)
        assert context._loaded is not None and context._loaded.image is not None


async def test_missing_and_corrupt_crop_files_can_be_marked_x(store):
    ids = source_time_order(store)
    store.crop_file(store.crop(ids[0])).unlink()
    store.crop_file(store.crop(ids[1])).write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "file missing" in str(app.screen.query_one("#crop", PixelImage).render())
        await pilot.press("x")
        assert "file corrupt" in str(app.screen.query_one("#crop", PixelImage).render())
        await pilot.press("x", "g")
        await pilot.pause()
        assert all(isinstance(c, GridCell) for c in app.screen.query(GridCell))
    assert events(store) == [(ids[0], "unusable", "ana", "label"), (ids[1], "unusable", "ana", "label")]


async def test_terminal_too_small_says_the_minimum_and_ignores_label_keys(store):
    app = app_for(store)
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        text = str(app.screen.query_one("#too-small").render())
        assert "Terminal too small: 50x12" in text and "at least 60x18" in text
        await pilot.press("m", "n")
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not isinstance(app.screen, TooSmallScreen)
        await pilot.press("m")
    assert len(events(store)) == 1


async def test_nothing_left_shows_all_done_and_undo_still_works(store):
    ids = source_time_order(store, "cam-a")
    app = app_for(store, source="cam-a")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*["n"] * len(ids))
        assert "Nothing left to label from source 'cam-a'" in str(
            app.screen.query_one("#crop", PixelImage).render())
        await pilot.press("m")  # nothing to label: no event, no crash
        await pilot.press("u")
        assert app.session.current_id == ids[-1]
    assert len(events(store)) == len(ids) + 1 and store.current_label(ids[-1]) is None


async def test_help_screen_lists_the_keys(store):
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("m")  # the help covers the view: no label
        await pilot.press("escape", "m")
    assert len(events(store)) == 1


async def test_two_apps_on_one_store_lose_nothing_and_overwrite_nothing(store, tmp_path):
    """A key on a crop another session labeled after this one showed it keeps that label, says so and moves on
    (docs/label.md: each skips crops the other labeled meanwhile)."""
    ids = source_time_order(store)
    with open_store(store.root) as second:
        a, b = app_for(store), app_for(second, annotator="bob")
        async with a.run_test(size=SIZE) as pa, b.run_test(size=SIZE) as pb:
            await pa.press("m", "m")  # ana labels the first two crops while bob looks at the first
            await pb.press("n")
            status = str(b.screen.query_one("#status").render())
            assert (f"crop {ids[0]} was labeled with_mask by ana in another session after it was shown here: "
                    "kept, not overwritten") in status
            assert b.session.current_id == ids[2]  # the second crop, labeled meanwhile too, is skipped
            await pb.press("n")  # bob labels the crop ana now shows
            await pa.press("m")
            assert f"crop {ids[2]} was labeled without_mask by bob" in str(a.screen.query_one("#status").render())
            for _ in range(3):
                await pa.press("m")
                await pb.press("n")
        assert a.session.session_labels + b.session.session_labels == len(events(store))
    got = events(store)
    assert got[:3] == [(ids[0], "with_mask", "ana", "label"), (ids[1], "with_mask", "ana", "label"),
                       (ids[2], "without_mask", "bob", "label")]
    assert len({e[0] for e in got}) == len(got)  # one event per crop: nobody's label was replaced
    assert [store.current_label(i) for i in ids[:3]] == ["with_mask", "with_mask", "without_mask"]
