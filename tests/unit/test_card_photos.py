"""PROMISES.md 17 on real hostile files made here: what card_photos.clean refuses, and what it keeps
(a re-encoded JPEG with no EXIF, no GPS and no comment left of the upload)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from portal.coverage import card_photos
from portal.coverage.card_photos import PhotoRefused, clean


def photo(fmt: str = "JPEG", size: tuple[int, int] = (1200, 760), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 110, 70)).save(out, format=fmt, **save)
    return out.getvalue()


def with_gps() -> bytes:
    """A JPEG whose EXIF says where and on what it was taken, and which way up it is."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show
    gps = {1: "N", 2: (41.0, 52.0, 55.0), 3: "W", 4: (87.0, 37.0, 40.0)}
    exif[0x8825] = gps  # GPSInfo
    return photo(exif=exif.tobytes(), comment=b"taken at home")


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG that declares ten billion pixels: a decompression bomb, refused before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


SVG_WITH_SCRIPT = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" width="800" height="500"><script>alert(document.cookie)</script>
<rect width="800" height="500" fill="blue"/></svg>"""
HTML_AS_JPEG = b"<!doctype html><html><body><script>fetch('/account')</script></body></html>"


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (SVG_WITH_SCRIPT, "card.svg", card_photos.NOT_A_PHOTO),
        (SVG_WITH_SCRIPT, "card.jpg", card_photos.NOT_A_PHOTO),
        (HTML_AS_JPEG, "card.jpg", card_photos.NOT_A_PHOTO),
        (bomb_png(), "card.png", card_photos.TOO_MANY_PIXELS),
        (b"", "card.jpg", card_photos.EMPTY),
        (b"\xff\xd8\xff" + b"\x00" * (card_photos.MAX_BYTES + 1), "card.jpg", card_photos.TOO_LARGE),
        (photo(), "../../card.jpg", card_photos.BAD_NAME),
        (photo(), "..\\card.jpg", card_photos.BAD_NAME),
        (photo(size=(120, 80)), "card.jpg", card_photos.TOO_SMALL),
        (photo("GIF"), "card.gif", card_photos.NOT_A_PHOTO),
        (photo()[:400], "card.jpg", card_photos.NOT_A_PHOTO),
    ],
    ids=[
        "svg",
        "svg-named-jpg",
        "html-named-jpg",
        "bomb",
        "empty",
        "oversize",
        "parent-path",
        "windows-path",
        "tiny",
        "gif",
        "truncated",
    ],
)
def test_hostile_or_unusable_uploads_are_refused_with_a_reason(data, name, reason):
    with pytest.raises(PhotoRefused) as refused:
        clean(data, name)
    assert refused.value.reason == reason


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_photos_are_re_encoded_as_jpeg(fmt):
    kept = clean(photo(fmt), "IMG_0001.heic.jpg")
    assert kept.data[:3] == b"\xff\xd8\xff"
    assert kept.media_type == "image/jpeg"
    with Image.open(io.BytesIO(kept.data)) as image:
        assert image.format == "JPEG"
        assert image.size == (1200, 760)


def test_exif_gps_and_comments_are_stripped_and_the_photo_turned_upright():
    original = with_gps()
    with Image.open(io.BytesIO(original)) as image:
        assert image.getexif().get_ifd(0x8825), "the test photo must carry GPS to prove anything"
    kept = clean(original, "card.jpg")
    with Image.open(io.BytesIO(kept.data)) as image:
        assert not image.getexif()
        assert "exif" not in image.info
        assert "comment" not in image.info
        assert "icc_profile" not in image.info
        assert image.size == (760, 1200)  # the Orientation tag was applied, then dropped
    assert b"Exif" not in kept.data
    assert b"PhoneMaker" not in kept.data
    assert b"taken at home" not in kept.data


def test_transparent_pictures_are_laid_on_white():
    out = io.BytesIO()
    Image.new("RGBA", (600, 400), (0, 0, 0, 0)).save(out, format="PNG")
    kept = clean(out.getvalue(), "card.png")
    with Image.open(io.BytesIO(kept.data)) as image:
        assert image.convert("L").getextrema()[0] > 240


def test_large_photos_are_scaled_down():
    kept = clean(photo(size=(4800, 3000), quality=60), "card.jpg")
    assert (kept.width, kept.height) == (card_photos.LONGEST_SIDE, 1500)
