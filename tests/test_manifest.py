"""The fetch manifest: typed rows, every bad row reported as FILE:LINE: reason before any download."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrfp.errors import InputError, ManifestError
from lrfp.manifest import parse_seconds, read_manifest, source_name_for_url

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as e:
        read_manifest(path)
    return str(e.value).splitlines()


def test_a_good_manifest_gives_typed_rows(tmp_path: Path) -> None:
    p = write(tmp_path, (
        "url,id,title,city,place,recorded,license,start,end,notes,camera\n"
        "https://example.org/a.mp4,walk-1,A walk,Lima,Miraflores,2021-03-04,CC BY 4.0,1:30,120.5,masks everywhere,phone\n"
        "\n"
        "http://example.org/b.mp4,,,,,,,,,\n"
    ))
    a, b = read_manifest(p)
    assert (a.line, a.url, a.name, a.title, a.city, a.place, a.recorded, a.license) == (
        2, "https://example.org/a.mp4", "walk-1", "A walk", "Lima", "Miraflores", "2021-03-04", "CC BY 4.0")
    assert (a.start_s, a.end_s, a.notes, a.extras) == (90.0, 120.5, "masks everywhere", {"camera": "phone"})
    assert a.meta() == {"city": "Lima", "place": "Miraflores", "recorded": "2021-03-04", "notes": "masks everywhere",
                        "start_s": 90.0, "end_s": 120.5, "extras": {"camera": "phone"}}
    assert b.line == 4 and b.start_s is None and b.end_s is None and b.title is None
    assert b.name == source_name_for_url("http://example.org/b.mp4")


def test_only_url_is_required_and_a_bom_is_fine(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_bytes("\ufeffURL\nhttps://www.youtube.com/watch?v=e4RsX2h2QIc\n".encode())
    (row,) = read_manifest(p)
    assert row.name == "youtube-e4RsX2h2QIc"


def test_no_url_column(tmp_path: Path) -> None:
    p = write(tmp_path, "link,title\nhttps://example.org/a.mp4,x\n")
    assert errors_of(p) == [f"{p}:1: no `url` column in the header (columns: link, title)"]


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    p = write(tmp_path, (
        "url,id,start,end,recorded\n"
        ",empty,,,\n"                                       # 2
        "file:///etc/passwd,,,,\n"                          # 3
        "ftp://example.org/v.mp4,,,,\n"                     # 4
        "javascript:alert(1),,,,\n"                         # 5
        "https://example.org/ok.mp4,ok,,,\n"                # 6
        "https://example.org/ok.mp4,again,,,\n"             # 7 duplicate url
        "https://example.org/s.mp4,s,abc,,\n"               # 8 bad start
        "https://example.org/e.mp4,e,10,5,\n"               # 9 end before start
        "https://example.org/n.mp4,n,-3,,\n"                # 10 negative start
        "https://example.org/d.mp4,d,,,2021-13-40\n"        # 11 bad date
        "https://example.org/p.mp4,../../evil,,,\n"         # 12 id that would be a path
        "https://example.org/q.mp4,ok,,,\n"                 # 13 duplicate id
        "example.org/v.mp4,,,,\n"                           # 14 no scheme
    ))
    assert errors_of(p) == [
        "12 bad row(s) in the manifest, nothing was downloaded:",
        f"{p}:2: empty url",
        f"{p}:3: only http:// and https:// URLs can be fetched; its scheme is file: (file:///etc/passwd)",
        f"{p}:4: only http:// and https:// URLs can be fetched; its scheme is ftp: (ftp://example.org/v.mp4)",
        f"{p}:5: only http:// and https:// URLs can be fetched; its scheme is javascript: (javascript:alert(1))",
        f"{p}:7: duplicate url https://example.org/ok.mp4 (first at line 6)",
        f"{p}:8: bad start 'abc': expected seconds (e.g. 90 or 90.5) or m:ss / h:mm:ss",
        f"{p}:9: end (5) must be after start (10)",
        f"{p}:10: bad start '-3': expected seconds (e.g. 90 or 90.5) or m:ss / h:mm:ss",
        f"{p}:11: bad recorded date '2021-13-40': expected YYYY-MM-DD (or YYYY-MM, YYYY)",
        f"{p}:12: id '../../evil' is not allowed: use letters, digits, '.', '_' or '-' (at most 80, starting with a letter or digit)",
        f"{p}:13: duplicate id 'ok' (first at line 6)",
        f"{p}:14: only http:// and https:// URLs can be fetched; it has no scheme (example.org/v.mp4)",
    ]


def test_duplicate_rows_are_reported(tmp_path: Path) -> None:
    p = write(tmp_path, "url\nhttps://example.org/a.mp4\nhttps://example.org/a.mp4\n")
    assert errors_of(p)[1:] == [f"{p}:3: duplicate url https://example.org/a.mp4 (first at line 2)"]


def test_missing_empty_and_header_only_manifests(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_manifest(tmp_path / "absent.csv")
    assert errors_of(write(tmp_path, "", "empty.csv")) == [
        f"{tmp_path / 'empty.csv'}: the manifest is empty; it needs a header line with a `url` column"]
    assert errors_of(write(tmp_path, "url,id\n", "h.csv")) == [f"{tmp_path / 'h.csv'}: the manifest has a header but no rows"]
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"url,title\nhttps://example.org/a.mp4,Jos\xe9\n")
    assert errors_of(bad)[0].startswith(f"{bad}: not a UTF-8 text file")


def test_too_many_fields_is_a_bad_row(tmp_path: Path) -> None:
    p = write(tmp_path, "url,title\nhttps://example.org/a.mp4,Lima, Peru\n")
    assert errors_of(p)[1:] == [f"{p}:2: 3 fields but the header has 2 (quote fields that contain commas)"]


@pytest.mark.parametrize("text,seconds", [("90", 90.0), ("90.5", 90.5), ("1:30", 90.0), ("1:02:03", 3723.0), ("0", 0.0)])
def test_parse_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-1", "1:75", "1::2", "nan", "inf", "1:2:3:4"])
def test_parse_seconds_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_seconds(text)


@pytest.mark.parametrize("url", [
    "https://example.org/../../etc/passwd",
    "https://example.org/a%2F..%2F..%2Fb.mp4?x=1",
    "https://example.org/C:\\windows\\x.mp4",
    "https://example.org/",
    "https://www.youtube.com/watch?v=../../x",
])
def test_names_derived_from_urls_are_path_safe(url: str) -> None:
    name = source_name_for_url(url)
    assert name and all(ch.isalnum() or ch in "-_" for ch in name), name
    assert source_name_for_url(url) == name  # stable across runs


def test_youtube_names() -> None:
    assert source_name_for_url("https://www.youtube.com/watch?v=trKeUE41KVY&t=30") == "youtube-trKeUE41KVY"
    assert source_name_for_url("https://youtu.be/BqBPCNyK5ZM") == "youtube-BqBPCNyK5ZM"


def test_shipped_manifests_hold_exactly_the_named_urls_marked_unverified() -> None:
    lima = read_manifest(REPO / "manifests" / "lima.csv")
    assert [r.url for r in lima] == [
        "https://www.youtube.com/watch?v=e4RsX2h2QIc",
        "https://www.youtube.com/watch?v=trKeUE41KVY",
        "https://www.youtube.com/watch?v=BqBPCNyK5ZM",
    ]
    sample = read_manifest(REPO / "manifests" / "sample.csv")
    assert [r.url for r in sample] == [
        "https://raw.githubusercontent.com/timesler/facenet-pytorch/master/examples/video.mp4",
        "https://github.com/intel-iot-devkit/sample-videos/raw/master/face-demographics-walking.mp4",
    ]
    for row in lima + sample:
        assert row.notes and "UNVERIFIED" in row.notes


def test_cli_rejects_a_bad_manifest_with_exit_2_before_creating_anything(tmp_path: Path, capsys) -> None:
    from fetch_helpers import run_cli

    p = write(tmp_path, "url\nftp://example.org/v.mp4\n")
    code = run_cli(["fetch", str(p), "-d", str(tmp_path / "data")])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "Error: 1 bad row(s) in the manifest, nothing was downloaded:",
        f"{p}:2: only http:// and https:// URLs can be fetched; its scheme is ftp: (ftp://example.org/v.mp4)",
    ]
    assert not (tmp_path / "data").exists()


def test_an_unbalanced_quote_is_a_file_line_error_not_a_swallowed_row(tmp_path: Path) -> None:
    p = write(tmp_path, 'url,id,notes\nhttps://e.org/1.mp4,q1,"oops\nhttps://e.org/2.mp4,q2,fine\nhttps://e.org/3.mp4,q3,fine\n')
    assert errors_of(p) == [
        "1 bad row(s) in the manifest, nothing was downloaded:",
        f'{p}:2: unbalanced quote: a field opened with " is never closed '
        '(close it, or double a quote inside a quoted field as "")',
    ]


def test_a_quoted_field_over_several_lines_is_refused_at_its_first_line(tmp_path: Path) -> None:
    # Two unbalanced quotes close each other: rows 2-3 would silently become one row.
    p = write(tmp_path, 'url,id,notes\nhttps://e.org/1.mp4,q1,"oops\nhttps://e.org/2.mp4,q2,fine"\n'
                        'https://e.org/3.mp4,q3,fine\n')
    assert errors_of(p)[1] == (f"{p}:2: a quoted field runs from line 2 to line 3: probably an unbalanced "
                               "quote (fields may not contain line breaks)")
    p = write(tmp_path, 'url,id,notes\nhttps://e.org/1.mp4,q1,"oops\nhttps://e.org/2.mp4,q2,"fine\n'
                        'https://e.org/3.mp4,q3,fine\n')
    assert errors_of(p)[1].startswith(f'{p}:2: unbalanced quote: a field opened with " on this line runs into line 3')


def test_text_after_a_closing_quote_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, 'url,id\n"https://e.org/1.mp4"x,q1\nhttps://e.org/2.mp4,q2\n')
    assert errors_of(p)[1].startswith(f"{p}:2: unreadable CSV (")


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_semicolon_or_tab_separated_manifest_is_read_like_a_comma_separated_one(tmp_path: Path, sep: str) -> None:
    """Spreadsheets in locales with a decimal comma (Spanish, ...) save CSV with `;`: the header's separator is used."""
    p = write(tmp_path, sep.join(["url", "id", "license", "title"]) + "\n"
              + sep.join(["https://example.org/a.mp4", "walk-1", "CC BY 4.0", '"Lima, centro; plaza"']) + "\n"
              + sep.join(["https://example.org/b.mp4", "walk-2", "", ""]) + "\n", name="semi.csv")
    a, b = read_manifest(p)
    assert (a.url, a.name, a.license, a.title) == ("https://example.org/a.mp4", "walk-1", "CC BY 4.0", "Lima, centro; plaza")
    assert (b.name, b.license, b.title) == ("walk-2", None, None)


def test_a_semicolon_manifest_with_too_many_fields_names_semicolons(tmp_path: Path) -> None:
    p = write(tmp_path, "url;id\nhttps://example.org/a.mp4;a;extra\n", name="semi.csv")
    assert errors_of(p)[1:] == [f"{p}:2: 3 fields but the header has 2 (quote fields that contain semicolons)"]


def test_every_malformed_url_is_a_bad_row(tmp_path: Path) -> None:
    """urlsplit and .port raise ValueError for what they cannot read: each is FILE:LINE, not an unexpected error."""
    p = write(tmp_path, (
        "url,id\n"
        "http://[::1:8931/x.mp4,a\n"              # 2 unclosed IPv6 bracket
        "http://127.0.0.1:abc/x.mp4,b\n"          # 3 port not a number
        "http://127.0.0.1:70000/x.mp4,c\n"        # 4 port out of range
        "http://127.0.0.1:0/x.mp4,d\n"            # 5 port 0
        "http://:8931/x.mp4,e\n"                  # 6 no host
        "http://e.org/\x1b[31mx.mp4,f\n"          # 7 a control character
        "http://[::1]:8931/x.mp4,ok\n"            # a well-formed IPv6 URL
    ))
    errs = errors_of(p)
    assert errs[0] == "6 bad row(s) in the manifest, nothing was downloaded:"
    assert errs[1] == f"{p}:2: malformed url (Invalid IPv6 URL): http://[::1:8931/x.mp4"
    assert errs[2].startswith(f"{p}:3: malformed url (") and "abc" in errs[2]
    assert errs[3].startswith(f"{p}:4: malformed url (") and "out of range" in errs[3]
    assert errs[4].startswith(f"{p}:5: malformed url (port 0")
    assert errs[5] == f"{p}:6: url has no host: http://:8931/x.mp4"
    assert errs[6] == f"{p}:7: url contains a control character: 'http://e.org/\\x1b[31mx.mp4'"


def test_an_end_with_an_empty_start_is_checked_against_0(tmp_path: Path) -> None:
    p = write(tmp_path, "url,id,start,end\nhttps://e.org/a.mp4,a,,0\nhttps://e.org/b.mp4,b,,0:05\n")
    assert errors_of(p)[1:] == [f"{p}:2: end (0) must be after start (0, the default)"]


def test_comment_lines_are_skipped_and_keep_line_numbers(tmp_path: Path) -> None:
    p = write(tmp_path, "# videos of Lima\nurl,id\n  # the next one is ours\nhttps://e.org/a.mp4,a\nftp://e.org/b,b\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    assert str(e.value).splitlines()[1:] == [
        f"{p}:5: only http:// and https:// URLs can be fetched; its scheme is ftp: (ftp://e.org/b)"]
    p = write(tmp_path, "# videos of Lima\nurl,id\n# https://e.org/old.mp4,old\nhttps://e.org/a.mp4,a\n")
    assert [(r.line, r.name) for r in read_manifest(p)] == [(4, "a")]


def test_a_nul_byte_is_unreadable_and_never_echoed(tmp_path: Path) -> None:
    p = tmp_path / "nul.csv"
    p.write_bytes(b"ur\x00l,id\nhttps://e.org/a.mp4,a\n")
    (err,) = errors_of(p)
    assert err == f"{p}:1: unreadable CSV (a NUL byte: this is not a text file; save it as UTF-8 CSV)"
    p.write_bytes(b"url,id\nhttps://e.org/a.mp4,a\x00\nhttps://e.org/b.mp4,b\n")
    assert errors_of(p)[1:] == [f"{p}:2: unreadable CSV (a NUL byte: this is not a text file; save it as UTF-8 CSV)"]


def test_a_bom_at_the_start_of_any_line_is_dropped(tmp_path: Path) -> None:
    """Tester2's bug 12: a `#` comment line after a BOM (files joined with `cat`) was a bad row "url contains
    whitespace: '\\ufeff# c'"; a URL after one was "a control character"."""
    p = tmp_path / "m.csv"
    p.write_bytes("\ufeff# made in an editor\nurl,id\n\ufeff# c\n\ufeffhttps://e.org/a.mp4,a\n# b\nhttps://e.org/b.mp4,b\n"
                  .encode())
    assert [(r.line, r.url, r.name) for r in read_manifest(p)] == [(4, "https://e.org/a.mp4", "a"),
                                                                  (6, "https://e.org/b.mp4", "b")]
    p.write_bytes("\ufeff\ufeffurl,id\n\ufeff\ufeff# c\nhttps://e.org/a.mp4,a\n".encode())
    assert [(r.line, r.name) for r in read_manifest(p)] == [(3, "a")]
