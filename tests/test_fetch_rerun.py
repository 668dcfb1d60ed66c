"""`lrfp fetch` reruns: descriptive manifest columns recorded without reprocessing, --downscale compared like every
setting the crops depend on, and a redo that fails giving the video back as it was (docs/fetch-faults.md).

Real yt-dlp downloads from an HTTP server on 127.0.0.1 (the edge of the network), real MediaPipe, real store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fetch_helpers import ARCADE_1080, CORRIDOR_GIF, STAGE_360, run_cli, serve, write_manifest
from lrfp.errors import PublishError
from lrfp.store import open_store


@pytest.fixture
def models(shared_dir: Path) -> str:
    return str(shared_dir / "models")


def fetch(manifest: Path, data: Path, models: str, *extra: str) -> int:
    return run_cli(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0", *extra])


def crops(data: Path, source: str) -> dict[int, str]:
    """crop id -> sha256 of the source's crops."""
    with open_store(data, create=False) as s:
        return {r["id"]: r["sha256"] for r in s.query(
            "SELECT c.id, c.sha256 FROM crops c JOIN sources s ON s.id = c.source_id WHERE s.name = ?", (source,))}


def refused_for_license(data: Path, source: str) -> bool:
    """Whether publish's license check (the one `lrfp publish` runs on a split's rows) refuses the source."""
    from lrfp.publish.export import check_licenses

    with open_store(data, create=False) as s:
        try:
            check_licenses(s, [{"source_name": source}], annotations_only=False)
        except PublishError as e:
            assert "the manifest's license column for `lrfp fetch`" in str(e)
            return True
    return False


def test_a_license_added_to_the_manifest_is_recorded_without_reprocessing(shared_dir: Path, models: str,
                                                                         tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    with serve(shared_dir / "data" / "videos") as base:
        url = f"{base}/{CORRIDOR_GIF}"
        bare = write_manifest(tmp_path / "c.csv", [{"url": url, "id": "corridor"}])
        assert fetch(bare, data, models) == 0
        before = crops(data, "corridor")
        assert before and refused_for_license(data, "corridor")
        capsys.readouterr()

        # The publish refusal's advice: the same rows plus a license column (and a title).
        licensed = write_manifest(tmp_path / "c2.csv", [{"url": url, "id": "corridor", "license": "CC-BY-4.0",
                                                         "title": "Intel corridor", "notes": "sample"}])
        assert fetch(licensed, data, models) == 0
        err = capsys.readouterr().err
        assert "corridor: ok earlier, skipped; license, title, notes recorded" in err
        assert "license recorded for 1 video (not reprocessed: the crops do not depend on it)" in err
        with open_store(data, create=False) as s:
            src = s.source("corridor")
            assert (src["license"], src["title"], src["status"]) == ("CC-BY-4.0", "Intel corridor", "ok")
            assert json.loads(src["meta"])["manifest"] == {"notes": "sample"}
        assert crops(data, "corridor") == before  # same crops, same ids: nothing reprocessed
        assert not refused_for_license(data, "corridor")

        # Again: nothing new to record; a row without the license column leaves the stored one alone.
        assert fetch(licensed, data, models) == 0 and "recorded" not in capsys.readouterr().err
        assert fetch(bare, data, models, "--redo") == 0
        with open_store(data, create=False) as s:
            assert s.source("corridor")["license"] == "CC-BY-4.0"


def test_a_redo_without_downscale_that_fails_keeps_the_earlier_video(shared_dir: Path, models: str, tmp_path: Path,
                                                                   capsys) -> None:
    data = tmp_path / "data"
    with serve(shared_dir / "data" / "videos") as base:
        manifest = write_manifest(tmp_path / "a.csv", [{"url": f"{base}/{ARCADE_1080}", "id": "arcade", "end": "2"}])
        assert fetch(manifest, data, models, "--downscale", "--every", "1") == 0
        before = crops(data, "arcade")
        assert before
        with open_store(data) as s:
            s.add_label(min(before), "without_mask", "ann")
            meta_before = s.source("arcade")["meta"]
        capsys.readouterr()

        # Without --downscale and without --redo: the change is named, nothing is done.
        assert fetch(manifest, data, models, "--every", "1", "--tiles", "off") == 0
        err = capsys.readouterr().err
        assert "arcade (downscale True -> False, tiles auto -> off)" in err

        # With --redo the video is 1080p again: the redo fails, the stored video stays as it was.
        assert fetch(manifest, data, models, "--every", "1", "--tiles", "off", "--redo") == 1
        err = capsys.readouterr().err
        assert ("arcade: too_high_res 1920x1080 is 720p or more (lrfp keeps videos below 720p); rerun with "
                "--redo --downscale to resize its frames to 480 lines; the redo failed, so the earlier run's "
                "status (ok), settings and crops are kept") in " ".join(err.split())
        with open_store(data, create=False) as s:
            src = s.source("arcade")
            assert (src["status"], src["error"], src["meta"]) == ("ok", None, meta_before)
            assert (src["width"], src["height"]) == (854, 480)
            assert s.get_setting("fetch.redo_of:arcade") is None
        assert crops(data, "arcade") == before

        # A plain rerun names the change again (nothing is lost, nothing half-done); --downscale matches it.
        assert fetch(manifest, data, models, "--every", "1", "--tiles", "off") == 0
        assert "downscale True -> False" in capsys.readouterr().err
        assert fetch(manifest, data, models, "--every", "1", "--downscale") == 0
        assert "other settings" not in capsys.readouterr().err


def test_downscale_is_not_a_change_for_a_video_it_did_not_resize(shared_dir: Path, models: str, tmp_path: Path,
                                                                capsys) -> None:
    data = tmp_path / "data"
    with serve(shared_dir / "data" / "videos") as base:
        manifest = write_manifest(tmp_path / "c.csv", [{"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"}])
        assert fetch(manifest, data, models, "--downscale") == 0
        capsys.readouterr()
        assert fetch(manifest, data, models) == 0  # 270 lines: --downscale changed nothing
        assert "other settings" not in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="makes its test media with ffmpeg (apt-get install ffmpeg)")
def test_a_redo_that_fails_after_storing_crops_removes_them_and_keeps_the_earlier_ones(shared_dir: Path, models: str,
                                                                                     tmp_path: Path, capsys) -> None:
    media = tmp_path / "media"
    media.mkdir()
    clip = media / "v.mp4"  # 4 s, moov first (as streamed MP4s are), so a prefix of it decodes
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                    str(shared_dir / "data" / "videos" / STAGE_360), "-t", "4", "-an", "-c:v", "libx264",
                    "-preset", "ultrafast", "-movflags", "+faststart", str(clip)], check=True)
    whole = clip.read_bytes()
    data = tmp_path / "data"
    with serve(media) as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/v.mp4", "id": "v"}])
        assert fetch(manifest, data, models, "--every", "1") == 0
        before = crops(data, "v")
        assert before
        with open_store(data, create=False) as s:
            meta_before = s.source("v")["meta"]
        # The server now sends the file cut short: the redo stores the crops of the frames it decodes (other
        # --every: other frames, new crops), then ends `truncated`.
        clip.write_bytes(whole[: len(whole) * 6 // 10])
        capsys.readouterr()
        assert fetch(manifest, data, models, "--every", "0.25", "--redo") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "v: truncated" in err and "the redo failed, so the earlier run's status (ok), settings and crops are kept" in err
    with open_store(data, create=False) as s:
        src = s.source("v")
        assert (src["status"], src["meta"]) == ("ok", meta_before)
    assert crops(data, "v") == before  # what the failed redo added is gone, the earlier crops stay
    assert sorted(p.name[:-4] for p in (data / "crops").rglob("*.png")) == sorted(before.values())


def test_a_redo_stopped_before_a_video_began_leaves_that_video_as_it_was(shared_dir: Path, models: str,
                                                                        tmp_path: Path, monkeypatch) -> None:
    """Tester's bug F: an interrupted --redo left the videos it had not reached `pending`, beside the crops of
    their earlier settings (and their saved earlier state behind). They stay `ok` now, and a rerun with --redo
    redoes them."""
    from lrfp.fetch import pipeline
    from lrfp.fetch.video import REDO_KEY

    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(shared_dir / "data" / "videos" / CORRIDOR_GIF, media / "a.gif")
    shutil.copy(shared_dir / "data" / "videos" / STAGE_360, media / "b.mp4")  # other footage: crops of its own
    data = tmp_path / "data"
    with serve(media) as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/a.gif", "id": "a"},
                                                       {"url": f"{base}/b.mp4", "id": "b"}])
        assert fetch(manifest, data, models, "--every", "0.5") == 0
        b_before = crops(data, "b")
        assert b_before
        real = pipeline.fetch_video

        def ctrl_c_after_the_first(store, row, *a, **kw):
            real(store, row, *a, **kw)
            raise KeyboardInterrupt  # Ctrl-C as the first video ends: the second is never begun

        monkeypatch.setattr(pipeline, "fetch_video", ctrl_c_after_the_first)
        assert fetch(manifest, data, models, "--every", "1", "--redo") == 130
        with open_store(data, create=False) as s:
            assert s.source("b")["status"] == "ok"
            assert json.loads(s.source("b")["meta"])["settings"]["every_s"] == 0.5  # what its crops were made with
            assert s.get_setting(REDO_KEY + "b") is None
        assert crops(data, "b") == b_before
        monkeypatch.setattr(pipeline, "fetch_video", real)
        assert fetch(manifest, data, models, "--every", "1", "--redo") == 0
    with open_store(data, create=False) as s:
        assert {n: (s.source(n)["status"], json.loads(s.source(n)["meta"])["settings"]["every_s"]) for n in "ab"} == {
            "a": ("ok", 1), "b": ("ok", 1)}


def test_a_signal_after_the_last_video_ended_is_not_an_interruption(shared_dir: Path, models: str, tmp_path: Path,
                                                                   monkeypatch, capsys) -> None:
    """Tester's bug I: a SIGTERM just after the last video's line said "rerun ... to finish" and exited 143,
    with every video done. As in bench, a stop after the work ended interrupts nothing: exit 0."""
    import os
    import signal

    from lrfp.fetch import pipeline

    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(shared_dir / "data" / "videos" / CORRIDOR_GIF, media / "a.gif")
    real = pipeline.fetch_video

    def sigterm_as_it_ends(*a, **kw):
        r = real(*a, **kw)
        os.kill(os.getpid(), signal.SIGTERM)  # caught by fetch's first-signal handler: it asks to stop
        for _ in range(1000):  # a handler runs at the next bytecode boundary
            pass
        return r

    monkeypatch.setattr(pipeline, "fetch_video", sigterm_as_it_ends)
    with serve(media) as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/a.gif", "id": "a"}])
        capsys.readouterr()
        assert fetch(manifest, tmp_path / "data", models) == 0
    err = capsys.readouterr().err
    assert "rerun the same command to finish" not in err and "a: ok" in " ".join(err.split())


def test_a_failed_row_takes_the_corrected_url_and_a_row_with_crops_keeps_its_own(shared_dir: Path, models: str,
                                                                                tmp_path: Path, capsys) -> None:
    """Tester's bug 9: a typo'd URL that failed (no crop) could never be fixed under its id."""
    data = tmp_path / "data"
    with serve(shared_dir / "data" / "videos") as base:
        typo = f"{base}/{CORRIDOR_GIF[:-4]}.gfi"
        bad = write_manifest(tmp_path / "fix1.csv", [{"url": typo, "id": "walk", "license": "MIT"}])
        assert fetch(bad, data, models) == 1
        with open_store(data, create=False) as s:
            assert s.source("walk")["status"] == "download_failed"
        capsys.readouterr()

        good_url = f"{base}/{CORRIDOR_GIF}"
        good = write_manifest(tmp_path / "fix2.csv", [{"url": good_url, "id": "walk", "license": "MIT"}])
        assert fetch(good, data, models) == 0  # a plain rerun: the new URL is a new video, not a retry of the failure
        err = capsys.readouterr().err
        assert f"walk: URL changed from {typo} to {good_url} (no crop came from the old one" in err
        with open_store(data, create=False) as s:
            src = s.source("walk")
            assert (src["url"], src["status"], src["license"]) == (good_url, "ok", "MIT")
            (change,) = json.loads(src["meta"])["url_changes"]
            assert (change["from"], change["to"], change["status"]) == (typo, good_url, "download_failed")
        walk = crops(data, "walk")
        assert walk

        # Now it owns crops: another URL under its id is refused, saying why, and nothing changes.
        other = write_manifest(tmp_path / "fix3.csv", [{"url": f"{base}/{STAGE_360}", "id": "walk"}])
        for flags in ((), ("--retry-failed",), ("--redo",)):
            assert fetch(other, data, models, *flags) == 2
            err = capsys.readouterr().err
            assert (f"source 'walk' has {len(walk)} crop(s) from another URL ({good_url}): they came from that video, "
                    "so the source keeps that URL; give this row another id") in " ".join(err.split())
        with open_store(data, create=False) as s:
            assert s.source("walk")["url"] == good_url
        assert crops(data, "walk") == walk


def test_a_pending_source_already_has_the_manifests_license(tmp_path: Path) -> None:
    """Tester's bug 18: `lrfp stats` showed `license: unknown` for a row not fetched yet."""
    from lrfp.fetch import FetchConfig
    from lrfp.fetch.pipeline import plan
    from lrfp.manifest import read_manifest
    from lrfp.stats import collect_stats

    m = write_manifest(tmp_path / "m.csv", [{"url": "http://127.0.0.1:9/a.mp4", "id": "a", "license": "CC-BY-4.0",
                                             "title": "A walk", "notes": "plaza"}])
    with open_store(tmp_path / "data") as s:
        todo, skipped, moved = plan(s, read_manifest(m), FetchConfig(), m)
        assert [r.name for r in todo] == ["a"] and not skipped and not moved
        src = s.source("a")
        assert (src["status"], src["license"], src["title"]) == ("pending", "CC-BY-4.0", "A walk")
        assert json.loads(src["meta"])["manifest"] == {"notes": "plaza"}
        (listed,) = collect_stats(s)["sources"]
        assert (listed["name"], listed["license"]) == ("a", "CC-BY-4.0")


def statuses_and_crops(data: Path) -> dict[str, tuple[str, int]]:
    with open_store(data, create=False) as s:
        return {r["name"]: (r["status"], r["n"]) for r in s.query(
            "SELECT s.name, s.status, COUNT(c.id) AS n FROM sources s LEFT JOIN crops c ON c.source_id = s.id "
            "GROUP BY s.id")}


def test_the_same_footage_under_two_ids_is_a_duplicate_and_a_redo_strands_neither(shared_dir: Path, models: str,
                                                                                 tmp_path: Path, capsys) -> None:
    """Tester's bug 6: the second id printed "ok 34 crops" but owned none (crops are one row per sha256); after a
    --redo of the first it stayed `ok` with 0 crops, skipped forever."""
    from lrfp.stats import collect_stats

    srv = tmp_path / "srv"
    srv.mkdir()
    clip = (shared_dir / "data" / "videos" / CORRIDOR_GIF).resolve()
    (srv / "a.gif").symlink_to(clip)
    (srv / "b b.gif").symlink_to(clip)  # a second link to the same file (a re-upload)
    (srv / "c.gif").write_bytes(clip.read_bytes() + b"\0" * 16)  # other bytes, the same frames
    data = tmp_path / "data"
    with serve(srv) as base:
        two = write_manifest(tmp_path / "dup.csv", [
            {"url": f"{base}/a.gif", "id": "walkA", "license": "MIT"},
            {"url": f"{base}/b%20b.gif", "id": "walkB", "license": "CC-BY-4.0"}])
        assert fetch(two, data, models) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert "walkB: duplicate same footage as source walkA: the file is byte-identical to walkA's" in err
        first = crops(data, "walkA")
        assert first and statuses_and_crops(data) == {"walkA": ("ok", len(first)), "walkB": ("duplicate", 0)}
        with open_store(data, create=False) as s:
            stats = collect_stats(s)
            sha = {n: json.loads(s.source(n)["meta"])["file_sha256"] for n in ("walkA", "walkB")}
        assert sha["walkA"] == sha["walkB"] and stats["source_status"] == {"ok": 1, "duplicate": 1}
        assert [(x["name"], x["status"], x["crops"], x["license"]) for x in stats["sources"]] == [
            ("walkA", "ok", len(first), "MIT"), ("walkB", "duplicate", 0, "CC-BY-4.0")]
        # Tester2's bug 17: the duplicate's message is its `note`, not an `error`.
        assert [(x["error"], (x["note"] or "")[:27]) for x in stats["sources"]] == [
            (None, ""), (None, "same footage as source walk")]
        capsys.readouterr()
        assert run_cli(["stats", "-d", str(data)]) == 0
        shown = " ".join(capsys.readouterr().out.split())
        assert "note: same footage as source walkA" in shown and "error: same footage" not in shown

        # A redo of the first alone with another margin: its crops change; the duplicate still names it.
        one = write_manifest(tmp_path / "dupA.csv", [{"url": f"{base}/a.gif", "id": "walkA", "license": "MIT"}])
        assert fetch(one, data, models, "--redo", "--margin", "0.4") == 0
        redone = crops(data, "walkA")
        assert redone and set(redone.values()).isdisjoint(first.values())
        assert statuses_and_crops(data) == {"walkA": ("ok", len(redone)), "walkB": ("duplicate", 0)}
        # A redo of the duplicate: still the first's crops, none taken from it.
        assert fetch(two, data, models, "--redo", "--margin", "0.4") == 0
        assert statuses_and_crops(data) == {"walkA": ("ok", len(redone)), "walkB": ("duplicate", 0)}
        assert crops(data, "walkA") == redone
        capsys.readouterr()

        # A store of an older lrfp: the second id `ok` with no crop of its own is processed again, not skipped.
        with open_store(data) as s:
            s.set_source_status(int(s.source("walkB")["id"]), "ok", None)
        assert fetch(two, data, models, "--margin", "0.4") == 0
        assert statuses_and_crops(data)["walkB"] == ("duplicate", 0)

        # Other bytes, the same frames: every crop is already walkA's.
        third = write_manifest(tmp_path / "dupC.csv", [{"url": f"{base}/c.gif", "id": "walkC"}])
        assert fetch(third, data, models, "--margin", "0.4") == 0
        err = " ".join(capsys.readouterr().err.split())
        assert f"walkC: duplicate same footage as source walkA: its {len(redone)} crops are all already stored as walkA's" in err
        assert statuses_and_crops(data)["walkC"] == ("duplicate", 0)
        assert crops(data, "walkA") == redone

        # Tester2's bug 17: a `start` of 0 is the empty start of walkA's row: the same stretch of the same bytes.
        (srv / "d.gif").symlink_to(clip)
        fourth = write_manifest(tmp_path / "dupD.csv", [{"url": f"{base}/d.gif", "id": "walkD", "start": "0"}])
        assert fetch(fourth, data, models, "--margin", "0.4") == 0
        err = " ".join(capsys.readouterr().err.split())
        assert "walkD: duplicate same footage as source walkA: the file is byte-identical to walkA's" in err


def test_a_source_cut_short_before_its_copy_was_fetched_is_never_a_duplicate_owning_crops(
        shared_dir: Path, models: str, tmp_path: Path, capsys) -> None:
    """Tester2's bug 2: the first id was interrupted mid-fetch (some crops stored), a byte copy was then fetched
    under a second id, then both: the first became `duplicate` owning its crops, and they survived --redo."""
    srv = tmp_path / "srv"
    srv.mkdir()
    clip = (shared_dir / "data" / "videos" / CORRIDOR_GIF).resolve()
    (srv / "a.gif").symlink_to(clip)
    (srv / "copy.gif").write_bytes(clip.read_bytes())  # a byte copy
    data = tmp_path / "data"
    with serve(srv) as base:
        row_a = {"url": f"{base}/a.gif", "id": "walkA"}
        row_b = {"url": f"{base}/copy.gif", "id": "walkB"}
        assert fetch(write_manifest(tmp_path / "a.csv", [row_a]), data, models) == 0
        first = crops(data, "walkA")
        assert len(first) >= 2
        # The state an interrupt leaves: walkA `interrupted`, owning the crops of the frames it had done.
        with open_store(data) as s:
            src = s.source("walkA")
            s.prune_source_crops(int(src["id"]), set(sorted(first)[:len(first) // 2]))
            s.set_source_status(int(src["id"]), "interrupted", "stopped by the user (Ctrl-C)")
        assert fetch(write_manifest(tmp_path / "b.csv", [row_b]), data, models) == 0
        both = write_manifest(tmp_path / "ab.csv", [row_a, row_b])
        assert fetch(both, data, models) == 0
        after = statuses_and_crops(data)
        assert after["walkA"][0] == "ok" and after["walkA"][1] > 0 and after["walkB"] == ("ok", len(first) - after["walkA"][1])
        capsys.readouterr()
        assert fetch(both, data, models, "--redo", "--margin", "0.4") == 0
        redone = statuses_and_crops(data)
        assert not any(status == "duplicate" and n > 0 for status, n in redone.values()), redone
        with open_store(data, create=False) as s:
            left = {r["sha256"] for r in s.query("SELECT sha256 FROM crops")}
        assert left and left.isdisjoint(first.values())  # no crop of the old margin left (none was labeled)
