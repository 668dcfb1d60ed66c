"""Half-block rendering: the right colour in the right half of the right cell."""

from __future__ import annotations

from PIL import Image
from rich.console import Console

from lrfp.label.halfblock import UPPER_HALF, HalfBlocks, context_region, fit_size, half_block_cells, load_image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def image(rows: list[list[tuple[int, int, int]]]) -> Image.Image:
    im = Image.new("RGB", (len(rows[0]), len(rows)))
    for y, row in enumerate(rows):
        for x, px in enumerate(row):
            im.putpixel((x, y), px)
    return im


def test_two_pixels_per_cell_upper_and_lower():
    im = image([[RED, GREEN], [BLUE, WHITE], [BLACK, RED], [GREEN, BLUE]])  # 2 wide, 4 tall
    cells = half_block_cells(im, cols=2, rows=2)
    assert cells == [[(RED, BLUE), (GREEN, WHITE)], [(BLACK, GREEN), (RED, BLUE)]]


def test_upscale_is_nearest_neighbour_by_a_whole_factor():
    im = image([[RED, GREEN], [BLUE, WHITE]])
    # 2x2 px in 10 cols x 3 rows: factor min(10/2, 6/2) = 3 -> 6x6 px = 6 cols x 3 rows
    cells = half_block_cells(im, cols=10, rows=3)
    assert len(cells) == 3 and all(len(r) == 6 for r in cells)
    assert cells[0] == [(RED, RED)] * 3 + [(GREEN, GREEN)] * 3
    assert cells[1] == [(RED, BLUE)] * 3 + [(GREEN, WHITE)] * 3  # pixel rows 2 (red/green) and 3 (blue/white)
    assert cells[2] == [(BLUE, BLUE)] * 3 + [(WHITE, WHITE)] * 3


def test_odd_height_leaves_the_last_lower_half_empty():
    cells = half_block_cells(image([[RED], [GREEN], [BLUE]]), cols=1, rows=2)
    assert cells == [[(RED, GREEN)], [(BLUE, None)]]


def test_a_large_image_is_shrunk_to_fit_keeping_aspect():
    assert fit_size(200, 100, cols=50, rows=50) == (50, 25)
    assert fit_size(48, 48, cols=120, rows=37) == (48 * 1, 48 * 1)  # 74/48 < 2: factor 1, never blurred
    assert fit_size(30, 30, cols=120, rows=37) == (60, 60)
    assert half_block_cells(image([[RED]]), cols=0, rows=5) == []


def test_renderable_writes_true_colour_half_blocks():
    im = image([[RED, GREEN], [BLUE, BLUE]])
    console = Console(color_system="truecolor", force_terminal=True, width=10)
    with console.capture() as cap:
        console.print(HalfBlocks(half_block_cells(im, 2, 1), width=2))
    out = cap.get()
    assert out.count(UPPER_HALF) == 2
    assert "38;2;255;0;0" in out and "48;2;0;0;255" in out  # red on top of blue
    assert "38;2;0;255;0" in out  # green on top of blue


def test_missing_and_corrupt_files_are_reported_not_raised(tmp_path):
    assert load_image(tmp_path / "nope.png").problem == f"file missing: {tmp_path / 'nope.png'}"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    loaded = load_image(bad, shown_as="crops/ba/bad.png")
    assert loaded.image is None and loaded.problem.startswith("file corrupt") and "crops/ba/bad.png" in loaded.problem


def test_context_region_outlines_the_box():
    frame = Image.new("RGB", (100, 100), BLACK)
    region = context_region(frame, (40, 40, 10, 10), margin=1.0)
    assert region.size == (30, 30)  # 10 px box + 10 px each side
    assert region.getpixel((9, 9)) == (255, 0, 255)  # outline just outside the box's corner
    assert region.getpixel((15, 15)) == BLACK


def test_context_region_scales_a_video_box_to_the_shrunk_context_frame():
    """`lrfp fetch` stores a 480-wide copy of an 854x480 frame; the box is in the video frame's pixels."""
    video = Image.new("RGB", (854, 480), BLACK)
    video.paste((200, 200, 200), (427, 240, 467, 280))  # a 40 px "face" at (427, 240)
    small = video.resize((480, 270))
    region = context_region(small, (427, 240, 40, 40), margin=1.0, box_frame_size=(854, 480))
    sx = 480 / 854
    side = round(40 * sx)
    assert region.size == (3 * side, 3 * side)  # the face and one face-width each side, at the copy's scale
    inner = region.getpixel((region.width // 2, region.height // 2))
    assert inner[0] > 150 and inner == (inner[0],) * 3  # the face is in the middle, not somewhere else
    unscaled = context_region(small, (427, 240, 40, 40), margin=1.0)  # what the labeler showed before
    assert unscaled.getpixel((unscaled.width // 2, unscaled.height // 2)) == BLACK
