"""`lrfp predict VIDEO`'s outputs appear whole or not at all (tester's bugs 10 and 15), and a URL's are named
after it (bug 18). The video is the real 640x360 stage clip; the checkpoint is trained here (predict_helpers)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from bench_helpers import cli_run
from fetch_helpers import cli_subprocess
from predict_helpers import STAGE_360, train_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(smfd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, _ = train_tiny_checkpoint(tmp_path_factory.mktemp("outputs_bench"), smfd_dir)
    return out / "checkpoints" / "model3.pt"


def test_sigterm_during_video_out_leaves_no_partial_file_and_no_empty_folder(ckpt: Path, shared_dir: Path,
                                                                             tmp_path: Path) -> None:
    """The tester's case: SIGTERM while the annotated MP4 is written left a broken 257-byte MP4 at its final name,
    an empty -o folder, and "what was stored stays" (nothing is stored)."""
    out, mp4 = tmp_path / "pv" / "sub", tmp_path / "vids" / "v.mp4"
    proc = cli_subprocess(["predict", str(shared_dir / "data" / "videos" / STAGE_360), "-c", str(ckpt), "-o", str(out),
                           "--video-out", str(mp4), "--every", "0.04", "--models-dir", str(shared_dir / "models")])
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "vids").glob("*v.mp4*")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)  # some frames written
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert "Terminated (SIGTERM): no output was written" in err and "what was stored" not in err
    assert sorted(os.listdir(tmp_path)) == []  # no MP4, no temporary file, no folder it made


def test_a_url_s_outputs_carry_a_readable_name() -> None:
    from lrfp.predict.video_target import output_stem

    a = output_stem("http://127.0.0.1:8000/street/face_clip.mp4", Path("3fddeb08c1.mp4"))
    b = output_stem("http://127.0.0.1:8000/other/face_clip.mp4", Path("77aa.mp4"))
    assert a.startswith("face_clip-") and b.startswith("face_clip-") and a != b and len(a) == len("face_clip-") + 8
    assert output_stem("https://www.youtube.com/watch?v=dQw4w9WgXcQ", Path("h.mp4")).startswith("dQw4w9WgXcQ-")
    assert output_stem("street.mp4", Path("/x/street.mp4")) == "street"


def test_video_out_on_a_full_disk_says_so_and_leaves_nothing(tmp_path: Path, ckpt: Path, shared_dir: Path, capsys) -> None:
    """It said "OpenCV cannot write an MP4 there" (exit 2, as if the path were wrong). A 200 KB tmpfs (root only)."""
    disk = tmp_path / "tiny"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a 200 KB tmpfs")
    try:
        code, _, err = cli_run(capsys, "predict", str(shared_dir / "data" / "videos" / STAGE_360), "-c", str(ckpt),
                               "-o", str(disk / "pv"), "--video-out", str(disk / "v.mp4"), "--every", "0.5",
                               "--models-dir", str(shared_dir / "models"))
        assert code == 1
        assert err == (f"Error: the disk holding {disk / 'v.mp4'} is full (No space left on device): free some space "
                       "and rerun the same command (what was written before stays)")  # predict stores nothing
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
