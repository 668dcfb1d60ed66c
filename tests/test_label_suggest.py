"""Model suggestions in `lrfp label` through Textual's pilot: keys in, then assertions on the store.

Predictions are written with the store's own `add_predictions` (what `lrfp predict` calls), so these tests
need no checkpoint; the probabilities are chosen to make the order and the suggestions known.
"""

from __future__ import annotations

import pytest
from label_helpers import source_time_order, unlabeled_store

from lrfp.cli import main
from lrfp.errors import UsageError
from lrfp.label.app import LabelApp
from lrfp.label.grid_screen import GridCell, GridScreen
from lrfp.label.session import LabelConfig, LabelSession
from lrfp.store import NewPrediction

SIZE = (120, 40)
SHA = "ab" * 32


@pytest.fixture
def store(tmp_path, smfd_dir):
    s = unlabeled_store(tmp_path / "data", smfd_dir, n=24)
    yield s
    s.close()


def predict(store, probs: dict[int, float]) -> None:
    """Store a prediction per crop: P(with_mask) = probs[crop_id]."""
    store.add_predictions([NewPrediction(i, SHA, "model3", {"with_mask": p, "without_mask": 1 - p})
                           for i, p in probs.items()])


def labels(store) -> list[tuple[int, str | None, str, int]]:
    """Every label event as (crop_id, label, kind, suggested), in commit order."""
    return [tuple(r) for r in store.query("SELECT crop_id, label, kind, suggested FROM labels ORDER BY id")]


def app_for(store, **cfg) -> LabelApp:
    return LabelApp(LabelSession(store, LabelConfig(**{"annotator": "ana", **cfg})))


async def test_single_view_shows_the_suggestion_and_y_accepts_it(store):
    ids = source_time_order(store)
    predict(store, {ids[0]: 0.93, ids[1]: 0.2})  # ids[2] has no prediction
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        meta = str(app.screen.query_one("#meta").render())
        assert "model: with_mask 0.93" in meta and "y accepts it" in meta
        footer = {(k.key, k.description) for k in app.screen.query("FooterKey")}
        assert ("y", "accept suggestion") in footer
        await pilot.press("y")  # accept with_mask
        assert "model: without_mask 0.80" in str(app.screen.query_one("#meta").render())
        await pilot.press("m")  # the model is wrong here: the key of the right class
        assert "model:" not in str(app.screen.query_one("#meta").render())
        await pilot.press("y")  # no suggestion for this crop: nothing is written
        assert "no suggestion for this crop" in str(app.screen.query_one("#status").render())
        assert app.session.current_id == ids[2]
    assert labels(store) == [(ids[0], "with_mask", "label", 1), (ids[1], "with_mask", "label", 0)]


async def test_order_uncertain_and_confident_follow_the_model(store):
    ids = source_time_order(store)
    probs = {ids[0]: 0.99, ids[1]: 0.55, ids[2]: 0.02, ids[3]: 0.7}  # confidence .99 .55 .98 .70
    predict(store, probs)
    uncertain = LabelSession(store, LabelConfig(annotator="ana", order="uncertain")).ids
    assert uncertain[:4] == [ids[1], ids[3], ids[2], ids[0]]
    assert uncertain[4:] == ids[4:]  # crops without a prediction follow, in source/time order
    confident = LabelSession(store, LabelConfig(annotator="ana", order="confident")).ids
    assert confident[:4] == [ids[0], ids[2], ids[3], ids[1]]


def test_order_uncertain_without_predictions_is_an_error_that_says_how(store, capsys):
    with pytest.raises(UsageError, match=r"the store has no model predictions: run `lrfp predict --checkpoint PATH`"):
        LabelSession(store, LabelConfig(annotator="ana", order="uncertain"))
    with pytest.raises(SystemExit) as e:
        main(["label", "-d", str(store.root), "--order", "uncertain"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2
    assert err.startswith("Error: --order uncertain needs model predictions") and "lrfp predict" in err
    assert labels(store) == []  # nothing written, nothing lost
    # predictions only for crops outside the queue (labeled ones): the same kind of error, said so
    ids = source_time_order(store)
    store.add_label(ids[0], "with_mask", "ana")
    predict(store, {ids[0]: 0.9})
    with pytest.raises(UsageError, match="none of the crops in this queue has a prediction"):
        LabelSession(store, LabelConfig(annotator="ana", order="confident"))


async def test_grid_page_arrives_prefilled_flip_the_wrong_one_and_confirm(store):
    ids = source_time_order(store)
    predict(store, {i: 0.9 for i in ids})  # the model says with_mask everywhere
    app = app_for(store, order="confident")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await pilot.pause()
        grid = app.screen
        assert isinstance(grid, GridScreen)
        page = list(grid.page)
        assert len(page) == 18
        assert ("y", "confirm suggestions") in {(k.key, k.description) for k in grid.query("FooterKey")}
        cells = list(grid.query(GridCell))
        shown = str(cells[1].query_one(".cell-label").render())
        assert "mask? 0.90" in shown and cells[1].has_class("suggested")
        await pilot.press("right", "n")  # cell 1 is wrong: flip it
        assert not cells[1].has_class("suggested") and "no mask" in str(cells[1].query_one(".cell-label").render())
        await pilot.press("y")  # confirm the other 17 and go to the next page
        await pilot.pause()
        assert grid.page == ids[18:24]
        assert "confirmed" in str(grid.query_one("#status").render())
    got = labels(store)
    assert got[0] == (page[1], "without_mask", "label", 0)
    assert sorted(got[1:]) == sorted((i, "with_mask", "label", 1) for i in page if i != page[1])


async def test_grid_confirm_leaves_cells_without_a_suggestion_unlabeled(store):
    ids = source_time_order(store)
    predict(store, {i: 0.1 for i in ids[:10]})
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert "8 cells without one stay unlabeled" in str(app.screen.query_one("#status").render())
    assert sorted(labels(store)) == sorted((i, "without_mask", "label", 1) for i in ids[:10])


async def test_blind_review_and_no_suggestions_hide_them(store):
    ids = source_time_order(store)
    store.add_label(ids[0], "with_mask", "ana")
    predict(store, {ids[0]: 0.1, ids[1]: 0.1})
    app = app_for(store, annotator="bob", review=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "model" not in str(app.screen.query_one("#meta").render())
        await pilot.press("y")
    app = app_for(store, suggestions=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "model:" not in str(app.screen.query_one("#meta").render())
        await pilot.press("y")
    assert labels(store) == [(ids[0], "with_mask", "label", 0)]
    with pytest.raises(UsageError, match="--review is blind: it cannot be combined with --order uncertain"):
        LabelSession(store, LabelConfig(annotator="bob", review=True, order="uncertain"))


async def test_undo_of_an_accepted_suggestion_restores_the_crop(store):
    ids = source_time_order(store)
    predict(store, {ids[0]: 0.8})
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("y", "u")
        assert app.session.current_id == ids[0]
        assert "model: with_mask 0.80" in str(app.screen.query_one("#meta").render())
    assert store.current_label(ids[0]) is None


def test_confirmed_suggestions_are_counted_by_the_card_and_left_out_of_agreement(small_store, tmp_path):
    from test_publish import read_card

    from lrfp.label.agreement import agreement
    from lrfp.publish import PublishConfig, export_dataset
    from lrfp.split import SplitConfig, grouped_split

    a, b, c = [r[0] for r in small_store.query("SELECT crop_id, label FROM current_labels ORDER BY crop_id LIMIT 3")]
    for crop_id, suggested in ((a, True), (b, True), (c, False)):
        label = small_store.current_label(crop_id)
        small_store.add_label(crop_id, label, "ana", suggested=suggested)  # the same class, now from lrfp label
        small_store.add_label(crop_id, label, "bob", "review")
    result = agreement(small_store)
    assert (result["n"], result["suggested_left_out"]) == (1, 2)
    from lrfp.stats import collect_stats

    assert collect_stats(small_store)["labels_from_suggestions"] == 2
    grouped_split(small_store, SplitConfig())
    out = tmp_path / "hub"
    export_dataset(small_store, PublishConfig(out=out, annotations_only=True))
    _, body = read_card(out)
    assert "3 labels were given by 1 annotator(s) in `lrfp label`" in body
    assert "2 of these were model-suggested and human-confirmed" in body
    assert "Agreement: 1 crops got a blind second label" in body


def test_a_v2_store_migrates_and_keeps_its_labels(tmp_path, smfd_dir, monkeypatch):
    import lrfp.store as store_mod

    full = list(store_mod.MIGRATIONS)
    monkeypatch.setattr(store_mod, "MIGRATIONS", full[:2])
    old = unlabeled_store(tmp_path / "old", smfd_dir, n=4)
    first = source_time_order(old)[0]
    old.conn.execute("INSERT INTO labels(crop_id, label, annotator, kind, created_at) VALUES (?, 'with_mask', 'ana', "
                     "'label', '2026-01-01T00:00:00+00:00')", (first,))
    old.close()
    monkeypatch.setattr(store_mod, "MIGRATIONS", full)
    with store_mod.open_store(tmp_path / "old") as s:
        assert s.schema_version() == len(full)
        assert labels(s) == [(first, "with_mask", "label", 0)]
        assert s.current_label(first) == "with_mask" and s.latest_label_issues_run() is None


@pytest.mark.parametrize("args, message", [
    (["--queue", "suspects"], "Error: --queue suspects: the store has no label-error ranking yet: run `lrfp review-labels` first"),
    (["--queue", "doubts"], "Error: --queue 'doubts': choose one of suspects"),
    (["--order", "random"], "Error: --order 'random': choose one of time, uncertain, confident"),
    (["--order", "confident", "--shuffle"], "Error: --order confident and --shuffle contradict each other"),
    (["--queue", "suspects", "--only", "all"], "Error: --queue suspects and --only all contradict each other"),
])
def test_bad_label_options_exit_2_before_the_app(store, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["label", "-d", str(store.root), *args])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().startswith(message)
    assert labels(store) == []


async def test_suspects_queue_keep_change_undo(store):
    ids = source_time_order(store)
    for i in ids[:3]:
        store.add_label(i, "with_mask", "ana")
    rows = [{"crop_id": i, "rank": r, "quality": 0.1 * r, "given_label": "with_mask", "suggested_label": "without_mask",
             "p_suggested": 0.9, "is_issue": True} for r, i in enumerate([ids[2], ids[0], ids[1]], start=1)]
    from lrfp.store import now

    store.save_label_issues("run1", now(), {}, rows)  # the ranking is made after the labels it judges
    app = app_for(store, queue="suspects")
    async with app.run_test(size=SIZE) as pilot:
        assert app.session.ids == [ids[2], ids[0], ids[1]]  # rank order
        await pilot.pause()
        assert "review-labels: without_mask 0.90" in str(app.screen.query_one("#meta").render())
        await pilot.press("y", "m", "u")  # change ids[2]; keep ids[0]; undo the keep
        assert app.session.current_id == ids[0]
        await pilot.press("right", "right", "left")  # an undone suspect waits again in this session
        assert app.session.current_id == ids[1]
        app.session.advance()
        assert app.session.current_id is None and app.session._next_matching(0) == 1
    assert store.current_label(ids[2]) == "without_mask" and store.current_label(ids[0]) == "with_mask"
    again = LabelSession(store, LabelConfig(annotator="ana", queue="suspects"))
    assert ids[2] not in again.ids and ids[1] in again.ids  # a suspect labeled since the run leaves the queue


async def test_undo_after_a_confirmed_page_brings_the_page_back_unlabeled(store):
    ids = source_time_order(store)
    predict(store, {i: 0.9 for i in ids})
    app = LabelApp(LabelSession(store, LabelConfig(annotator="ana")), grid=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        page = list(app.screen.page)
        await pilot.press("y")
        await pilot.pause()
        assert app.screen.page == ids[18:24]
        assert app.session.summary().session_suggested == 18
        await pilot.press("u")  # one undo restores the whole confirmed page and shows it again
        await pilot.pause()
        assert app.screen.page == page
        assert app.session.summary().session_suggested == 0
    assert all(store.current_label(i) is None for i in page)
