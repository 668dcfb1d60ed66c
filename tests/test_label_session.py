"""The labeling session without a terminal: queue, filters, commits, undo, resume, review, agreement."""

from __future__ import annotations

import pytest
from label_helpers import events, source_time_order, unlabeled_store

from lrfp.errors import NotFoundError, UsageError
from lrfp.label.agreement import agreement, cohen_kappa
from lrfp.label.session import LabelConfig, LabelSession, in_review_sample
from lrfp.store import open_store


@pytest.fixture
def store(tmp_path, smfd_dir):
    s = unlabeled_store(tmp_path / "data", smfd_dir, n=12)
    yield s
    s.close()


def test_default_order_is_source_then_time_and_each_label_is_committed_at_once(store):
    s = LabelSession(store, LabelConfig(annotator="ana"))
    order = source_time_order(store)
    assert s.ids == order
    s.label_current("with_mask")
    s.label_current("without_mask")
    # A second connection (another process) sees both events without any close or flush.
    with open_store(store.root) as other:
        assert events(other) == [(order[0], "with_mask", "ana", "label"), (order[1], "without_mask", "ana", "label")]
    assert s.current_id == order[2]


def test_resume_starts_at_the_first_unlabeled_crop(store):
    order = source_time_order(store)
    s = LabelSession(store, LabelConfig(annotator="ana"))
    for label in ("with_mask", "skip", "unusable"):
        s.label_current(label)
    again = LabelSession(store, LabelConfig(annotator="ana"))
    assert again.current_id == order[3]
    assert order[1] not in again.ids  # skipped: asked again only with --only skipped
    assert LabelSession(store, LabelConfig(annotator="ana", only="skipped")).ids == [order[1]]


def test_undo_appends_an_event_restoring_the_previous_label(store):
    order = source_time_order(store)
    s = LabelSession(store, LabelConfig(annotator="ana"))
    s.label_current("with_mask")
    s.label_current("without_mask")
    assert s.undo() == order[1]
    assert s.current_id == order[1]
    assert store.current_label(order[1]) is None
    s.go_to(order[0])
    s.label_current("without_mask")  # relabel the first crop, then undo back to with_mask
    s.undo()
    assert store.current_label(order[0]) == "with_mask"
    assert [e[1] for e in events(store) if e[0] == order[0]] == ["with_mask", "without_mask", "with_mask"]
    assert s.undo() == order[0] and store.current_label(order[0]) is None
    assert s.undo() is None  # nothing left to undo in this session


def test_filters_source_label_shuffle(store):
    cam_b = source_time_order(store, "cam-b")
    assert LabelSession(store, LabelConfig(annotator="a", source="cam-b")).ids == cam_b
    s = LabelSession(store, LabelConfig(annotator="a"))
    s.label_current("with_mask")
    s.label_current("without_mask")
    s.label_current("with_mask")
    with_mask = LabelSession(store, LabelConfig(annotator="a", label="with_mask"))
    assert sorted(with_mask.ids) == sorted(source_time_order(store)[i] for i in (0, 2))
    one = LabelSession(store, LabelConfig(annotator="a", shuffle=True, seed=3)).ids
    assert one == LabelSession(store, LabelConfig(annotator="a", shuffle=True, seed=3)).ids
    assert sorted(one) == sorted(source_time_order(store)[3:]) and one != source_time_order(store)[3:]


@pytest.mark.parametrize("cfg, message", [
    (LabelConfig(annotator="a", only="maybe"), "--only 'maybe': choose one of unlabeled, skipped, all"),
    (LabelConfig(annotator="a", label="mask"),
     "--label 'mask': choose one of with_mask, without_mask, unusable, skip"),
    (LabelConfig(annotator="a", label="with_mask", only="skipped"),
     "--label with_mask and --only skipped contradict each other: use one of them"),
    (LabelConfig(annotator="a", sample=0.1), "--sample only applies with --review"),
    (LabelConfig(annotator="a", review=True, sample=1.5), "--sample 1.5: must be a fraction in (0, 1], e.g. 0.1"),
    (LabelConfig(annotator="a", review=True, label="with_mask"),
     "--review is blind: it cannot be combined with --label"),
    (LabelConfig(annotator=" "), "--annotator must not be empty"),
])
def test_bad_options_are_refused_with_a_message(store, cfg, message):
    with pytest.raises(UsageError) as e:
        LabelSession(store, cfg)
    assert str(e.value) == message


def test_unknown_source_names_the_known_ones(store):
    with pytest.raises(NotFoundError) as e:
        LabelSession(store, LabelConfig(annotator="a", source="cam-z"))
    assert str(e.value) == "no source named 'cam-z' in the store (known: cam-a, cam-b)"


def test_empty_store_and_nothing_left_messages(tmp_path, store):
    with open_store(tmp_path / "empty") as empty:
        s = LabelSession(empty, LabelConfig(annotator="a"))
        assert s.done and s.empty_message() == "The store has no crops yet: run `lrfp import` or `lrfp fetch` first."
    s = LabelSession(store, LabelConfig(annotator="a"))
    while not s.done:
        s.label_current("skip" if s.position == 0 else "with_mask")
    again = LabelSession(store, LabelConfig(annotator="a"))
    assert again.empty_message() == (
        "Nothing left to label: all 12 crops have a label (1 skipped: run `lrfp label --only skipped`).")


def test_another_process_labeling_is_skipped_on_advance(store):
    order = source_time_order(store)
    mine = LabelSession(store, LabelConfig(annotator="ana"))
    with open_store(store.root) as other_store:
        other = LabelSession(other_store, LabelConfig(annotator="bob"))
        other.go_to(order[1])
        other.label_current("without_mask")
    mine.label_current("with_mask")
    assert mine.current_id == order[2]  # order[1] was labeled meanwhile by bob


def test_review_is_blind_sampled_and_writes_review_events(store):
    order = source_time_order(store)
    ana = LabelSession(store, LabelConfig(annotator="ana"))
    for label in ["with_mask", "without_mask", "unusable", "skip"] + ["with_mask"] * 4:
        ana.label_current(label)
    bob = LabelSession(store, LabelConfig(annotator="bob", review=True))
    # Decided by someone else: the 7 non-skip labels; the skip and the 4 unlabeled crops are not reviewed.
    assert bob.ids == [i for i in order[:8] if i != order[3]]
    info = bob.info(bob.current_id)
    assert info.label is None and info.history == ()  # blind: ana's label is not shown
    bob.label_current("without_mask")
    assert store.current_label(order[0]) == "with_mask"  # a review never changes the label
    assert events(store, "review") == [(order[0], "without_mask", "bob", "review")]
    assert LabelSession(store, LabelConfig(annotator="ana", review=True)).ids == []  # not your own labels
    sample = LabelSession(store, LabelConfig(annotator="carl", review=True, sample=0.5, seed=1)).ids
    decided_by_ana = [i for i in order[:8] if i != order[3]]
    assert sample == [i for i in decided_by_ana if in_review_sample(i, 0.5, 1)]
    assert 0 < len(sample) < 7  # about half, stable across restarts (a hash of seed and crop id)


def test_agreement_kappa_confusion_and_disagreements(store):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    order = source_time_order(store)
    first = ["with_mask", "with_mask", "without_mask", "without_mask", "unusable", "with_mask", "without_mask"]
    second = ["with_mask", "without_mask", "without_mask", "without_mask", "unusable", "with_mask", "with_mask"]
    for crop, label in zip(order, first):
        store.add_label(crop, label, "ana", "label")
    assert agreement(store) is None  # no review yet
    for crop, label in zip(order, second):
        store.add_label(crop, label, "bob", "review")
    store.add_label(order[7], "with_mask", "ana", "label")
    store.add_label(order[7], "skip", "bob", "review")  # not compared
    a = agreement(store)
    assert a["n"] == 7 and a["not_compared"] == 1
    assert a["kappa"] == pytest.approx(sklearn_metrics.cohen_kappa_score(first, second))
    assert a["confusion"]["with_mask"]["without_mask"] == 1 and a["confusion"]["without_mask"]["with_mask"] == 1
    assert [(d["crop_id"], d["label"], d["review"]) for d in a["disagreements"]] == [
        (order[1], "with_mask", "without_mask"), (order[6], "without_mask", "with_mask")]
    assert a["by_reviewer"]["bob"]["n"] == 7
    assert cohen_kappa([("with_mask", "with_mask")]) is None  # one class only: kappa undefined


def test_moving_past_the_end_does_not_claim_all_done(store):
    order = source_time_order(store)
    s = LabelSession(store, LabelConfig(annotator="a"))
    s.label_current("with_mask")
    for _ in range(20):
        s.next()
    assert s.done
    assert s.empty_message() == (
        f"End of the queue, but crop {order[1]} and maybe others before it still wait: left goes back.")


def test_a_fetched_crop_shows_its_face_in_the_middle_of_the_shrunk_context_frame(tmp_path):
    """Like `lrfp fetch`: the box is in video pixels (854x480), the stored context JPEG is half as wide."""
    import io

    from PIL import Image

    from lrfp.label.single_screen import SingleScreen
    from lrfp.store import CropOrigin

    video = Image.new("RGB", (854, 480), (0, 0, 0))
    video.paste((255, 255, 255), (600, 300, 640, 340))  # a 40 px white "face"
    small, crop = io.BytesIO(), io.BytesIO()
    video.resize((427, 240), Image.Resampling.BOX).save(small, format="JPEG")
    video.crop((590, 290, 650, 350)).save(crop, format="PNG")
    with open_store(tmp_path / "data") as st:
        src = st.upsert_source("clip", "video", url="https://example.org/clip.mp4", width=854, height=480)
        frame_id = st.add_frame(src, 7, 0.25, 854, 480, small.getvalue())
        st.add_crop(src, crop.getvalue(), 60, 60, CropOrigin(frame_id=frame_id, frame_index=7, time_s=0.25,
                                                            box=(600, 300, 40, 40), score=0.9, track_id="clip:t0"))
        s = LabelSession(st, LabelConfig(annotator="ana"))
        info = s.info(s.current_id)
        assert info.frame_size == (854, 480)
        loaded, problem = SingleScreen._context_image(info)
        assert problem == "" and loaded.image is not None
        region = loaded.image
        r, g, b = region.getpixel((region.width // 2, region.height // 2))
        assert min(r, g, b) > 200  # the face, not the black around it
