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


@pytest.mark.parametrize("keys", [["without_mask"] * 5, ["accept", "accept"]])
async def test_label_keys_then_grid_before_the_event_loop_turns(store, keys):
    """The same race made deterministic: the actions of keys read in one go run back to back, so the view's
    deferred callbacks (preparing the next crop) come after `g` replaced it ("nnnnng", and "yyg" in a queue
    of suggestions)."""
    ids = source_time_order(store)
    suggestions = {}
    if "accept" in keys:
        for i in ids[:6]:
            store.add_label(i, "with_mask", "ana")
        rows = [{"crop_id": i, "rank": r, "quality": 0.1, "given_label": "with_mask",
                 "suggested_label": "without_mask", "p_suggested": 0.9, "is_issue": True}
                for r, i in enumerate(ids[:6], start=1)]
        store.save_label_issues("run1", now(), {}, rows)
        suggestions = {"queue": "suspects"}
    app = app_for(store, **suggestions)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        single = app.screen
        for key in keys:
            single.action_accept() if key == "accept" else single.action_label(key)
        single.action_grid()
        await pilot.pause(0.2)
        grid = app.screen
        assert isinstance(grid, GridScreen)
        grid.action_label("with_mask")
        grid.action_single()
        await pilot.pause(0.2)
        assert isinstance(app.screen, SingleScreen)
    assert [store.current_label(i) for i in ids[:len(keys)]] == ["without_mask"] * len(keys)


def suspects(store, n: int) -> list[int]:
    """Label the first `n` crops with_mask (by ana) and store a review-labels ranking flagging all of them."""
    ids = source_time_order(store)
    for i in ids[:n]:
        store.add_label(i, "with_mask", "ana")
    rows = [{"crop_id": i, "rank": r, "quality": 0.1, "given_label": "with_mask", "suggested_label": "without_mask",
             "p_suggested": 0.9, "is_issue": True} for r, i in enumerate(ids[:n], start=1)]
    store.save_label_issues("run1", now(), {}, rows)
    return ids


async def test_suspects_queue_y_y_g_in_one_burst(store):
    ids = suspects(store, 6)
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


def test_left_passes_over_a_removed_crop(store):
    ids = source_time_order(store)
    s = LabelSession(store, LabelConfig(annotator="ana"))
    s.next()
    s.next()
    store.delete_crops([ids[1]])
    s.previous()
    assert s.current_id == ids[0]


def test_a_removed_suspect_is_skipped_by_y(store):
    ids = suspects(store, 3)
    s = LabelSession(store, LabelConfig(annotator="ana", queue="suspects"))
    s.current_info()
    store.delete_crops([ids[0], ids[1]])
    assert s.accept_current() is None
    assert s.take_notice() == (f"crop {ids[0]} is no longer in the store (another command removed it, e.g. "
                               "`lrfp fetch --redo`): skipped")
    assert s.current_id == ids[2] and s.accept_current() is not None
    assert s.summary().total == 1


def test_undo_does_not_overwrite_a_label_another_session_gave_since(store):
    from lrfp.store import open_store

    ids = source_time_order(store)
    mine = LabelSession(store, LabelConfig(annotator="ana"))
    mine.current_info()
    mine.label_current("with_mask")
    with open_store(store.root) as other_store:
        other = LabelSession(other_store, LabelConfig(annotator="bob", only="all"))
        other.info(ids[0])  # bob sees ana's label, and changes it: that is his to do
        assert other.set_label(ids[0], "without_mask") is not None
    assert mine.undo() is None
    assert mine.take_notice() == (f"crop {ids[0]} was labeled without_mask by bob in another session since: "
                                  "not undone, it stays")
    assert store.current_label(ids[0]) == "without_mask"
    assert [e[1:] for e in events(store)] == [("with_mask", "ana", "label"), ("without_mask", "bob", "label")]


def test_a_label_given_before_the_crop_was_shown_can_be_changed(store):
    """Only changes made after this session showed the crop are protected: `--only all` relabels as before."""
    ids = source_time_order(store)
    s = LabelSession(store, LabelConfig(annotator="ana", only="all"))
    store.add_label(ids[0], "with_mask", "bob")  # after the session started, before the crop was shown
    assert s.current_info().label == "with_mask"
    assert s.label_current("without_mask") is not None and s.take_notice() is None
    assert store.current_label(ids[0]) == "without_mask"


def test_a_full_disk_while_labeling_is_the_full_disk_error_not_a_crash(store, monkeypatch, capsys):
    """Tester's bug 4: a full disk on a key printed Textual's traceback and "stopped on an unexpected error ...
    please report it". It ends like any command on a full disk: the app quits, `Error: the disk holding ... is full`,
    exit 1, every label stored before it kept. (SQLite's own error is injected on the store's write.)"""
    import sqlite3

    from lrfp.cli import main
    from lrfp.label import app as app_module
    from lrfp.store import Store

    ids = source_time_order(store)
    append = Store.append_label
    calls = []

    def append_until_full(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(args)
        if len(calls) > 2:
            raise sqlite3.OperationalError("database or disk is full")
        return append(self, *args, **kwargs)

    async def type_keys(pilot):  # noqa: ANN001, ANN202
        await pilot.press("n")
        await pilot.press("m")
        key = textual_events.Key("n", "n")  # the key the disk fills on: sent without pilot's wait (the app quits)
        key.set_sender(pilot.app)
        pilot.app._driver.send_message(key)

    monkeypatch.setattr(Store, "append_label", append_until_full)
    monkeypatch.setattr(app_module, "require_terminal", lambda: None)
    run = LabelApp.run
    monkeypatch.setattr(LabelApp, "run", lambda self: run(self, headless=True, size=SIZE, auto_pilot=type_keys))
    with pytest.raises(SystemExit) as e:
        main(["label", "-d", str(store.root), "--annotator", "ana"])
    err = capsys.readouterr().err
    assert e.value.code == 1
    assert err.startswith(f"Error: the disk holding {store.root} is full (No space left on device)"), err
    assert "Traceback" not in err and "unexpected" not in err and "report" not in err
    assert events(store) == [(ids[0], "without_mask", "ana", "label"), (ids[1], "with_mask", "ana", "label")]


def test_the_closing_counts_include_crops_added_while_the_app_ran(store, monkeypatch, smfd_dir):
    """Tester's bug 14: a crop a `fetch --redo` added mid-session was left out of the closing "N/M decided; K
    unlabeled" line (the counts of the crops selected when the app started)."""
    from lrfp.images import downscale, encode_png, load_rgb
    from lrfp.label import app as app_module
    from lrfp.store import CropOrigin, open_store

    path = sorted((smfd_dir / "with_mask").glob("*.jpg"))[-1]
    im = downscale(load_rgb(path.read_bytes()), 40)

    async def label_then_add_a_crop(pilot):  # noqa: ANN001, ANN202
        await pilot.press("n")
        with open_store(store.root) as other:  # another command, its own connection
            source_id = int(other.find_source("cam-a")["id"])
            other.add_crop(source_id, encode_png(im), im.width, im.height, CropOrigin(
                original=path.name, time_s=99.0, frame_index=99, score=0.9, detector="test"))
        await pilot.press("q")

    monkeypatch.setattr(app_module, "require_terminal", lambda: None)
    run = LabelApp.run
    monkeypatch.setattr(LabelApp, "run", lambda self: run(self, headless=True, size=SIZE, auto_pilot=label_then_add_a_crop))
    summary = app_module.run_label_app(store.root, LabelConfig(annotator="ana")).summary
    assert (summary.total, summary.decided, summary.counts.get("unlabeled")) == (25, 1, 24)
    assert store.count_crops() == 25
