"""Every image mode Pillow opens becomes the RGB a viewer would see, and a decompression bomb names its file."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from lrfp.errors import ImageFileError
from lrfp.images import ImageDecodeError, load_rgb, open_rgb, to_rgb


@pytest.fixture(scope="module")
def face(smfd_dir) -> Image.Image:
    """A real SMFD face (without mask), RGB."""
    return Image.open(smfd_dir / "without_mask" / "0.jpg").convert("RGB")


def gray16(face: Image.Image, mode: str = "I;16") -> Image.Image:
    """The face as 16-bit grayscale, 8-bit values x257 (what a 16-bit camera or converter writes)."""
    g = np.asarray(face.convert("L")).astype(np.uint16) * 257
    dtype = ">u2" if mode == "I;16B" else "<u2"
    return Image.frombytes(mode, face.size, g.astype(dtype).tobytes())


def to_lab(face: Image.Image) -> Image.Image:
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    return ImageCms.applyTransform(face, ImageCms.buildTransform(srgb, lab, "RGB", "LAB"))


def encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def gray_error(got: Image.Image, face: Image.Image, block: int = 1) -> float:
    """Mean absolute grey-level difference (0-255), after averaging block x block pixels (for dithered 1-bit)."""
    size = (face.width // block, face.height // block)
    a = np.asarray(got.convert("L").resize(size, Image.Resampling.BOX), dtype=float)
    b = np.asarray(face.convert("L").resize(size, Image.Resampling.BOX), dtype=float)
    return float(np.abs(a - b).mean())


# (mode written, file format, builder, tolerance in grey levels, block)
FILE_CASES = [
    ("1", "PNG", lambda f: f.convert("1"), 6, 8),
    ("L", "PNG", lambda f: f.convert("L"), 1, 1),
    ("LA", "PNG", lambda f: f.convert("LA"), 1, 1),
    ("P", "PNG", lambda f: f.convert("P"), 12, 1),
    ("RGB", "PNG", lambda f: f, 0.5, 1),
    ("RGBA", "PNG", lambda f: f.convert("RGBA"), 0.5, 1),
    ("CMYK", "TIFF", lambda f: f.convert("CMYK"), 1, 1),
    ("YCbCr", "TIFF", lambda f: f.convert("YCbCr"), 2, 1),
    ("LAB", "TIFF", to_lab, 2, 1),
    ("I;16", "PNG", gray16, 1, 1),  # the example: used to come out all white (mean 254.8)
    ("I;16B", "TIFF", lambda f: gray16(f, "I;16B"), 1, 1),
    ("I", "TIFF", lambda f: Image.fromarray(np.asarray(f.convert("L")).astype(np.int32) * 257), 1, 1),
    ("F", "TIFF", lambda f: Image.fromarray(np.asarray(f.convert("L")).astype(np.float32) / 255), 1, 1),
]


@pytest.mark.parametrize("mode, fmt, build, tol, block", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_each_mode_in_a_file_decodes_to_the_face(face, mode, fmt, build, tol, block):
    data = encode(build(face), fmt)
    assert Image.open(io.BytesIO(data)).mode == mode  # the file really holds that mode
    got = load_rgb(data)
    assert got.mode == "RGB" and got.size == face.size
    assert gray_error(got, face, block) < tol


MEMORY_CASES = ["La", "RGBa", "PA", "HSV", "RGBX", "I;16L", "I;16N"]


@pytest.mark.parametrize("mode", MEMORY_CASES)
def test_modes_without_a_file_format_convert_too(face, mode):
    im = gray16(face, mode) if mode.startswith("I;16") else face.convert(mode)
    assert gray_error(to_rgb(im), face) < 12


def test_transparent_pixels_show_as_white(face):
    rgba = face.convert("RGBA")
    rgba.putalpha(0)
    assert np.asarray(load_rgb(encode(rgba, "PNG"))).min() == 255


@pytest.mark.parametrize("values, reason", [
    (np.full((8, 8), -5.0, dtype=np.float32), "negative values"),
    (np.full((8, 8), 1e6, dtype=np.float32), r"values up to 1e\+06: no known scale"),
])
def test_values_without_a_known_scale_are_skipped_with_a_reason(values, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        load_rgb(encode(Image.fromarray(values), "TIFF"))


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A PNG header announcing side x side pixels (no need to hold 400 megapixels in memory to test the guard)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_a_clear_error_naming_the_file(tmp_path):
    p = bomb_png(tmp_path / "huge.png")
    with pytest.raises(ImageFileError) as e:
        open_rgb(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: image too large to open (")
    assert "decompression bombs at 179 megapixels: shrink the image first" in msg


def test_import_stores_a_16_bit_png_as_the_face_and_skips_a_bomb(capsys, tmp_path, face):
    from lrfp.cli import main
    from lrfp.store import open_store

    (tmp_path / "in" / "with_mask").mkdir(parents=True)
    gray16(face).save(tmp_path / "in" / "with_mask" / "face16.png")
    bomb_png(tmp_path / "in" / "with_mask" / "huge.png")
    with pytest.raises(SystemExit) as e:
        main(["import", str(tmp_path / "in"), "--source", "s", "-d", str(tmp_path / "d")])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "image too large to open" in out  # the skip reason is shown
    with open_store(tmp_path / "d", create=False) as s:
        (row,) = s.query("SELECT * FROM crops")
        crop = Image.open(s.crop_file(row))
        assert abs(np.asarray(crop.convert("L")).mean() - np.asarray(face.convert("L")).mean()) < 1  # ~64, not 254.8
        (skip,) = s.query("SELECT relpath, reason FROM imported_files WHERE status = 'skipped'")
        assert skip["relpath"] == "with_mask/huge.png" and skip["reason"].startswith("image too large to open")


def test_eval_on_a_bomb_names_the_file_and_a_16_bit_face_loads_right(tmp_path, face):
    from benchmark.data import load_eval_set

    for label in ("with_mask", "without_mask"):
        (tmp_path / "ev" / label).mkdir(parents=True)
        gray16(face).save(tmp_path / "ev" / label / "face16.png")
    name, sub = load_eval_set(str(tmp_path / "ev"))
    assert abs(sub.images[0].mean() - np.asarray(face.convert("L")).mean()) < 1  # not all white
    bomb_png(tmp_path / "ev" / "with_mask" / "huge.png")
    _, sub = load_eval_set(str(tmp_path / "ev"))  # left out and named, as predict and import skip it
    assert len(sub) == 2 and [f for f, _ in sub.skipped] == ["with_mask/huge.png"]
    assert sub.skipped[0][1].startswith("image too large to open (")


def test_eval_on_a_file_says_it_is_not_a_folder(tmp_path):
    from lrfp.errors import InputError

    from benchmark.data import load_eval_set

    f = tmp_path / "x.png"
    f.write_bytes(b"x")
    with pytest.raises(InputError) as e:
        load_eval_set(str(f))
    assert e.value.exit_code == 2
    assert str(e.value) == (f"--eval-on {f} is a file, not a folder: give a folder with class subfolders with_mask, "
                            "without_mask/ or a dataset folder written by `lrfp publish`")
