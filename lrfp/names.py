"""The rule for names lrfp stores and puts into paths (source names: the manifest's `id`, `import --source`)."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
"""Letters, digits, '.', '_' or '-', 1-80 characters, starting with a letter or digit: safe as a path part."""

NAME_RULE = "use letters, digits, '.', '_' or '-' (at most 80, starting with a letter or digit)"


def name_problem(name: str) -> str | None:
    """Why `name` breaks NAME_RE (None when it is fine): empty, too long, or which characters are not allowed."""
    if NAME_RE.fullmatch(name):
        return None
    if not name:
        return "is empty"
    if len(name) > 80:
        return f"is {len(name)} characters long"
    bad = sorted({ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch in "._-"))})
    if bad:
        return "contains " + " ".join(repr(ch) for ch in bad)
    return "must start with a letter or digit"
