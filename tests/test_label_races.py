"""`lrfp label` against what happens around it: keys typed in one burst (a deferred callback of a view a key
already replaced), crops removed by another command while shown, and an unexpected error inside the app."""

from __future__ import annotations

import pytest
from label_helpers import events, source_time_order, unlabeled_store
from textual import events as textual_events

from lrfp.label.app import LabelApp
from lrfp.label.grid_screen import GridCell, GridScreen
from lrfp.label.session import LabelConfig, LabelSession
from lrfp.label.single_screen import SingleScreen
from lrfp.store import now

SIZE = (120, 40)


@pytest.fixture
def store(tmp_path, smfd_dir):
    s = unlabeled_store(tmp_path / "data", smfd_dir, n=24)
    yield s
    s.close()


def app_for(store, **cfg) -> LabelApp:
    return LabelApp(LabelSession(store, LabelConfig(**{"annotator": "ana", **cfg})))


async def burst(app: LabelApp, pilot, keys: list[str]) -> None:
    """Type `keys` as one burst, as a fast typist or a paste does: every key is queued before the app handles the
    first (pilot.press waits for the app to settle after each key, which hides races)."""
    for key in keys:  # as pilot.press sends each key (through the driver), without its wait after each
        event = textual_events.Key(key, key if len(key) == 1 else None)
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause(0.3)
    await pilot.pause()


def status(app: LabelApp) -> str:
    return str(app.screen.query_one("#status").render())


async def test_label_keys_then_g_in_one_burst(store):
    """Tester's bug: "nnnnng" typed at once crashed with NoMatches '#crop' in SingleScreen._prepare_next."""
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await burst(app, pilot, list("nnnnng"))
        assert isinstance(app.screen, GridScreen)
        for keys in (list("gnng"), list("gsg"), ["g", "right", "g", "g", "u", "g", "enter", "g"], list("gmg")):
            await burst(app, pilot, keys)
    # (run_test re-raises an exception inside the app: reaching here means none happened)
    assert events(store)[:5] == [(i, "without_mask", "ana", "label") for i in ids[:5]]


async def test_suspects_queue_y_y_g_in_one_burst(store):
    ids = source_time_order(store)
    for i in ids[:6]:
        store.add_label(i, "with_mask", "ana")
    rows = [{"crop_id": i, "rank": r, "quality": 0.1, "given_label": "with_mask", "suggested_label": "without_mask",
             "p_suggested": 0.9, "is_issue": True} for r, i in enumerate(ids[:6], start=1)]
    store.save_label_issues("run1", now(), {}, rows)
    app = app_for(store, queue="suspects")
    async with app.run_test(size=SIZE) as pilot:
        await burst(app, pilot, list("yyg"))
        assert isinstance(app.screen, GridScreen)
        await burst(app, pilot, list("gyyg"))
    assert [store.current_label(i) for i in ids[:4]] == ["without_mask"] * 4


async def test_a_crop_removed_while_shown_is_skipped_with_a_notice(store):
    """Tester's bug: `lrfp fetch --redo` removed the crop on screen; the next key crashed (FOREIGN KEY failed)."""
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        assert app.session.current_id == ids[1]
        store.delete_crops([ids[1], ids[2], ids[3]])  # what fetch --redo does to unlabeled crops
        await pilot.press("n")  # on the removed crop on screen
        assert status(app).strip() == (f"crop {ids[1]} is no longer in the store (another command removed it, "
                                       "e.g. `lrfp fetch --redo`): skipped")
        assert app.session.current_id == ids[4]  # ids[2] and ids[3] are gone too: not shown
        await pilot.press("m", "u", "u")  # undo works on what is still there
        assert app.session.current_id == ids[0]
        await pilot.press("x")
    assert events(store) == [(ids[0], "without_mask", "ana", "label"), (ids[4], "with_mask", "ana", "label"),
                             (ids[4], None, "ana", "label"), (ids[0], None, "ana", "label"),
                             (ids[0], "unusable", "ana", "label")]
    summary = app.session.summary()
    assert summary.total == 21 and summary.decided == 1 and summary.counts["unlabeled"] == 20


async def test_a_removed_crop_in_the_grid_and_its_undo(store):
    ids = source_time_order(store)
    app = app_for(store)
    app.start_in_grid = True
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        page = app.screen.page
        await pilot.press("m")  # page[0]
        store.delete_crops([page[0], page[1], page[2]])  # page[0] labeled: its undo cannot be done either
        await pilot.press("n")  # cursor on page[1]: removed
        assert f"crop {page[1]} is no longer in the store" in status(app)
        cells = list(app.screen.query(GridCell))
        assert "removed from store" in str(cells[1].query_one(".cell-label").render())
        await pilot.press("a")  # the rest of the page: every cell still there, none of the removed ones
        assert "2 crops skipped: 2 no longer in the store" in status(app)  # page[0] and page[2]
        await pilot.press("u")  # undoes the `a`
        await pilot.press("u")  # undoes the first m: its crop is gone
        assert f"crop {page[0]} is no longer in the store" in status(app)
        await pilot.press("enter", "g", "left", "right", "m")
    stored = {e[0] for e in events(store)}
    assert not stored & {page[0], page[1], page[2]} and ids[0] == page[0]


async def test_a_crop_removed_before_it_is_shown_is_never_shown(store):
    ids = source_time_order(store)
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        store.delete_crops([ids[1]])
        await pilot.press("m")
        assert app.session.current_id == ids[2]
        assert "saved" in status(app)


def test_an_error_inside_the_app_is_an_error_not_exit_0(store, monkeypatch):
    """Any exception inside the app ends `lrfp label` with exit 1 and `Error: ...`, never 0 (the terminal is
    restored by Textual; here run headless)."""
    from lrfp.errors import LrfpError
    from lrfp.label import app as app_module

    def broken(self, status=None):  # noqa: ANN001, ANN202 - a bug in a view
        raise RuntimeError("boom")

    monkeypatch.setattr(SingleScreen, "show_current", broken)
    monkeypatch.setattr(app_module, "require_terminal", lambda: None)
    run = LabelApp.run
    monkeypatch.setattr(LabelApp, "run", lambda self: run(self, headless=True, size=SIZE))
    with pytest.raises(LrfpError) as e:
        app_module.run_label_app(store.root, LabelConfig(annotator="ana"))
    assert e.value.exit_code == 1
    assert str(e.value).startswith("lrfp label stopped on an unexpected error (RuntimeError: boom)")
    assert events(store) == []
