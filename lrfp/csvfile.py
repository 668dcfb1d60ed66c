"""Read the CSV files lrfp takes as input (manifests, groups CSVs) strictly, with FILE:LINE for each fault.

Python's csv module, left lenient, reads an unbalanced quote as a field that swallows every following
line; here that and any field spanning lines is an error at the line where the quote opened.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record: the line it starts on (1-based) and its fields, stripped of surrounding spaces."""

    line: int
    fields: list[str]


BOM = "\ufeff"
"""The byte order mark (U+FEFF). Editors write it at the start of a UTF-8 file; files joined with `cat` carry
it to the start of a later line, where it is invisible, so it is dropped at the start of every line."""


def read_csv_text(path: Path, what: str) -> str:
    """The file's text (UTF-8), without the BOM at the start of the file or of any line (BOM): a `#` comment
    or a URL after one reads as without it. Line numbers stay those of the file. Raises ValueError with a
    FILE-prefixed reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {e.start}); save the {what} as UTF-8 CSV") from e
    if BOM not in text:
        return text
    return "".join(line.lstrip(BOM) for line in text.splitlines(keepends=True))


SEPARATORS = (",", ";", "\t")
"""Field separators accepted: the comma, and the semicolon and tab that spreadsheets write in locales where the
comma is the decimal mark (e.g. Spanish: "Guardar como CSV" gives `url;id;license`)."""


def detect_separator(text: str) -> str:
    """The field separator of CSV `text`: the one of SEPARATORS found most often in its first non-blank line
    (the header), outside quoted fields; a comma when none is there (a one-column file)."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    counts = {sep: unquoted.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # ties go to the first: the comma
    return best if counts[best] > 0 else ","


def parse_csv(path: Path, text: str) -> tuple[list[CsvRecord], list[str]]:
    """Split CSV text into records, skipping blank lines. Returns (records, errors as `FILE:LINE: reason`).

    The separator is the header's (detect_separator): a comma, or a semicolon or tab throughout the file.
    A record whose quoted field runs over a line end (usually an unbalanced `"`) is an error at the line
    where it starts, and so is any other CSV syntax fault (a stray character after a closing quote, a NUL
    byte); reading goes on after it where it can, so that every fault is listed at once.
    """
    reader = csv.reader(text.splitlines(keepends=True), strict=True, delimiter=detect_separator(text))
    records: list[CsvRecord] = []
    errors: list[str] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                errors.append(f"{path}:{start}: unbalanced quote: a field opened with \" is never closed "
                              "(close it, or double a quote inside a quoted field as \"\")")
                break
            if reader.line_num > start:
                errors.append(f"{path}:{start}: unbalanced quote: a field opened with \" on this line runs into "
                              f"line {reader.line_num} ({e})")
                continue
            errors.append(f"{path}:{reader.line_num}: unreadable CSV ({e})")
            continue
        if any("\0" in f for f in fields):  # Python's csv reads NUL bytes since 3.11; they are not text
            errors.append(f"{path}:{start}: unreadable CSV (a NUL byte: this is not a text file; save it as UTF-8 CSV)")
            continue
        if reader.line_num > start:
            errors.append(f"{path}:{start}: a quoted field runs from line {start} to line {reader.line_num}: "
                          "probably an unbalanced quote (fields may not contain line breaks)")
            continue
        if not any(f.strip() for f in fields):
            continue
        records.append(CsvRecord(start, [f.strip() for f in fields]))
    return records, errors
