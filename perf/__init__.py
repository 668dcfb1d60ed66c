"""Measurement scripts (speed, memory, detector recall): run by hand, never by `lrfp` or the tests."""


def code_version() -> str:
    """`git describe --always --dirty` of this checkout ("" outside git): which code a measurement ran."""
    import subprocess
    from pathlib import Path

    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def torch_device(device: str, threads: int | None) -> str:
    """Set torch's thread count (when given) and resolve `device` ("auto", "cpu", "cuda[:N]") as `lrfp bench`
    does, with its allocator setting (benchmark/cpu_allocator.py, for both sides of a comparison); on CUDA turn on
    cuDNN's timed kernel choice, as `engine.run` does. Returns the device string."""
    import torch

    from benchmark.cpu_allocator import keep_freed_memory
    from benchmark.harness import resolve_device

    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    return device


def write_result(result: dict, out: str | None) -> None:
    """A measurement's result as indented JSON on stdout and, when `out` is given, in that file."""
    import json
    from pathlib import Path

    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
