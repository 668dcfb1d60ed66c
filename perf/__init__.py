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
