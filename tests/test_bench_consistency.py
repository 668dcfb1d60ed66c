"""`lrfp bench` refuses and skips as `lrfp predict` and `lrfp import` do (tester's bug 16): an unreadable --eval-on
image is left out and named, no GPU is the machine's refusal (exit 1) in every command, and --threads far above
the CPU cores is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bench_helpers import cli_run, split_store


def _eval_folder(smfd_dir: Path, dest: Path, n: int = 4) -> Path:
    for label in ("with_mask", "without_mask"):
        (dest / label).mkdir(parents=True)
        for p in sorted((smfd_dir / label).iterdir())[:n]:
            shutil.copy(p, dest / label / p.name)
    (dest / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    return dest


def test_a_corrupt_eval_on_image_is_left_out_and_named(tmp_path: Path, smfd_dir: Path, capsys) -> None:
    """It aborted the whole benchmark with exit 1, while predict FOLDER and import skip such a file."""
    data = split_store(tmp_path, smfd_dir, n_groups=12, max_side=32, split="s")
    ev = _eval_folder(smfd_dir, tmp_path / "ev")
    code, _, err = cli_run(capsys, "bench", "-d", str(data), "--split", "s", "--model", "model3", "--protocol", "quick",
                           "--epochs", "1", "--input-size", "16", "--eval-on", str(ev), "--out", str(tmp_path / "b"))
    assert code == 0, err
    said = " ".join(err.split())
    assert f"Note: --eval-on {ev}: 1 unreadable image left out (with_mask/broken.jpg: " in said
    assert "the other 8 are evaluated" in said
    md = (tmp_path / "b" / "results.md").read_text()
    assert "1 unreadable image of ev left out (not evaluated):" in md and "- `with_mask/broken.jpg`: " in md
    assert "| ev | model3 |" in md  # the other images were evaluated


def test_an_eval_on_folder_of_only_unreadable_images_is_refused(tmp_path: Path) -> None:
    from benchmark.data import load_eval_set
    from lrfp.errors import InputError

    for label in ("with_mask", "without_mask"):
        (tmp_path / "ev" / label).mkdir(parents=True)
        (tmp_path / "ev" / label / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(InputError) as e:
        load_eval_set(str(tmp_path / "ev"))
    assert e.value.exit_code == 2
    assert str(e.value).startswith(f"--eval-on {tmp_path / 'ev'}: none of its 2 image files can be read (first: ")


def test_threads_far_above_the_cores_is_refused(tmp_path: Path, capsys) -> None:
    """--threads 1000 was accepted; a 6 s run then did not end in 120 s."""
    from benchmark.harness import OVERSUBSCRIBE
    from lrfp.machine import usable_cpus

    cores = usable_cpus()
    code, _, err = cli_run(capsys, "bench", "-d", str(tmp_path / "none"), "--model", "model3", "--threads", str(OVERSUBSCRIBE * cores + 1),
                           "--out", str(tmp_path / "b"))
    assert code == 2
    assert err == (f"Error: --threads {OVERSUBSCRIBE * cores + 1} is far more than the {cores} CPU "
                   f"core{'s' if cores != 1 else ''} this process may use: torch's threads would wait for each other and "
                   f"the run crawl; give --threads {cores} (or leave it out: torch's own default)")
    assert not (tmp_path / "b").exists()


def test_no_gpu_is_exit_1_in_bench_and_predict_alike(tmp_path: Path) -> None:
    """bench said exit 1 and predict exit 2 for the same refusal; both are the machine's (exit 1)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    from benchmark.harness import resolve_device as bench_device
    from lrfp.errors import LrfpError
    from lrfp.predict.infer import resolve_device as predict_device

    codes = []
    for resolve in (bench_device, predict_device):
        with pytest.raises(LrfpError) as e:
            resolve("cuda")
        codes.append(e.value.exit_code)
        assert str(e.value).startswith("--device cuda asked for, but no CUDA device is available")
    assert codes == [1, 1]
