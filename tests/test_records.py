"""Image checks of make_record: what counts as corrupt, what does not."""

import io

import pytest

from instructiad.errors import BadFileError
from instructiad.records import check_image
from instructiad.sources.synthetic import render


def encoded(fmt: str) -> bytes:
    image, _ = render("woven_fabric", None, seed=7, size=64)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_a_flipped_byte_inside_png_data_fails_its_crc():
    data = bytearray(encoded("PNG"))
    data[len(data) // 2] ^= 0x01
    with pytest.raises(BadFileError, match="corrupt or truncated image"):
        check_image(bytes(data), "x.png")


def test_jpeg_with_trailing_bytes_after_its_end_marker_is_accepted():
    facts = check_image(encoded("JPEG") + b"\x00" * 64 + b"camera trailer", "x.jpg")
    assert (facts.format, facts.mode, facts.width, facts.height) == ("JPEG", "RGB", 64, 64)


def test_other_formats_are_decoded_in_full():
    data = encoded("BMP")
    assert check_image(data, "x.bmp").format == "BMP"
    with pytest.raises(BadFileError, match=r"x\.bmp: corrupt or truncated image"):
        check_image(data[: len(data) // 2], "x.bmp")


def test_a_text_file_is_not_an_image():
    with pytest.raises(BadFileError, match=r"notes\.png: corrupt or truncated image"):
        check_image(b"hello", "notes.png")
