"""The `--precision auto` probe cache ($XDG_CACHE_HOME/lrfp/precision.json) is only a saving: a malformed one
is ignored with a warning naming the file, the probe runs again and rewrites it; a probe that fails says why
and that fp32 is the fallback; "nan ms" is never shown (bench-bugs.md bug 13)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from lrfp.cli import main

CONFIG = "model3|16px|batch 4|adam"


@pytest.fixture()
def cache_file(monkeypatch, tmp_path) -> Path:
    from benchmark import precision

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "_busy", lambda: False)  # keep the probe whatever the machine's load
    path = tmp_path / "cache" / "lrfp" / "precision.json"
    path.parent.mkdir(parents=True)
    return path


def run_cfg():
    from benchmark.engine import RunConfig

    return RunConfig(model="model3", norm=None, seed=0, epochs=1, eval_epochs=(1,), input_size=16, optimizer="adam",
                     batch_size=4, device="cpu")


def _machine() -> str:
    from benchmark.precision import machine_key

    return machine_key()


MALFORMED = {
    "a list": lambda: "[]",
    "truncated JSON": lambda: '{"' + _machine() + '": {"' + CONFIG + '": {"fp32_ms": 12.',
    "a string": lambda: '"fast"',
    "a machine entry that is a list": lambda: json.dumps({_machine(): []}),
    "NaN timings": lambda: '{"' + _machine() + '": {"' + CONFIG + '": {"fp32_ms": NaN, "bf16_ms": NaN}}}',
    "text timings": lambda: json.dumps({_machine(): {CONFIG: {"fp32_ms": "12", "bf16_ms": "9"}}}),
    "a negative timing": lambda: json.dumps({_machine(): {CONFIG: {"fp32_ms": -1, "bf16_ms": 9}}}),
    "bool timings": lambda: json.dumps({_machine(): {CONFIG: {"fp32_ms": True, "bf16_ms": True}}}),
    "a timing missing": lambda: json.dumps({_machine(): {CONFIG: {"fp32_ms": 12.0}}}),
    "not UTF-8": lambda: b"\xff\xfe{".decode("latin-1"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_cache_is_ignored_with_a_warning_and_the_probe_runs_again(case, cache_file, caplog):
    from benchmark import precision

    text = MALFORMED[case]()
    cache_file.write_bytes(text.encode("latin-1") if case == "not UTF-8" else text.encode())
    with caplog.at_level(logging.WARNING, logger="benchmark.precision"):
        res = precision.probe(run_cfg())
    assert not res.cached and math.isfinite(res.fp32_ms) and res.fp32_ms > 0 and math.isfinite(res.bf16_ms)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(cache_file) in warnings[0] and "ignoring" in warnings[0]
    # rewritten as a valid cache holding the new timing; read again, it is a hit
    assert json.loads(cache_file.read_text())[_machine()][CONFIG] == {"fp32_ms": res.fp32_ms, "bf16_ms": res.bf16_ms}
    assert precision.probe(run_cfg()).cached


def test_valid_entries_beside_a_malformed_one_are_kept(cache_file, caplog):
    from benchmark import precision

    good = {"fp32_ms": 40.0, "bf16_ms": 20.0}
    cache_file.write_text(json.dumps({_machine(): {"model1-bn|32px|batch 64|sgd": good, CONFIG: {"fp32_ms": None}},
                                      "other machine": {"x": good}}))
    with caplog.at_level(logging.WARNING, logger="benchmark.precision"):
        assert not precision.probe(run_cfg()).cached
    assert "ignoring 1 malformed entry" in caplog.text and str(cache_file) in caplog.text
    kept = json.loads(cache_file.read_text())
    assert kept[_machine()]["model1-bn|32px|batch 64|sgd"] == good and kept["other machine"] == {"x": good}


@pytest.fixture(scope="module")
def tiny_store(smfd_dir, tmp_path_factory) -> Path:
    from bench_helpers import split_store

    return split_store(tmp_path_factory.mktemp("precache"), smfd_dir, n_groups=30, max_side=16)


def bench(capsys, store: Path, out: Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(["bench", "--model", "model3", "--protocol", "quick", "--epochs", "1", "--input-size", "16", "--device",
              "cpu", "--precision", "auto", "-d", str(store), "--out", str(out)])
    return e.value.code, capsys.readouterr().err


def test_bench_with_a_malformed_cache_says_so_and_shows_real_timings(tiny_store, cache_file, tmp_path):
    import os
    import subprocess
    import sys

    cache_file.write_text("[]")
    # a real process: the warning reaches stderr through the CLI's own logging setup (in-process, pytest holds it)
    r = subprocess.run([sys.executable, "-m", "lrfp", "bench", "--model", "model3", "--protocol", "quick", "--epochs", "1",
                        "--input-size", "16", "--device", "cpu", "--precision", "auto", "-d", str(tiny_store),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300, env={**os.environ})
    code, err = r.returncode, r.stderr
    assert code == 0, err
    assert f"ignoring the precision cache {cache_file}" in err
    line = next(x for x in err.splitlines() if x.startswith("precision model3 @16px: "))
    assert "nan" not in line.lower() and " ms, bf16 " in line


def test_a_failed_probe_says_why_and_that_fp32_is_the_fallback(tiny_store, cache_file, capsys, tmp_path, monkeypatch):
    from benchmark import precision

    def broken(run_cfg):  # stands in for a probe that breaks on this machine (say, a oneDNN kernel missing)
        raise RuntimeError("could not create a primitive descriptor")

    monkeypatch.setattr(precision, "_trainer", broken)
    code, err = bench(capsys, tiny_store, tmp_path / "o")
    assert code == 0, err  # the run itself trains in fp32
    assert ("precision model3 @16px: fp32, the fallback: the timing probe failed (RuntimeError: could not create a "
            "primitive descriptor)") in err
    assert "nan" not in err.lower()
    rows = [json.loads(x) for x in (tmp_path / "o" / "results.jsonl").read_text().splitlines() if x.strip()]
    assert rows and all(not r["error"] and r["amp"] == "fp32" for r in rows)
