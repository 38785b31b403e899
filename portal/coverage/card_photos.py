"""Insurance card photos (PROMISES.md 17): checked, re-encoded and sealed before they are kept.

What arrives is trusted in nothing: not its declared type, not its name. The bytes must open in
Pillow as a JPEG, PNG or WebP of a sane size; the picture is turned upright, copied pixel by pixel
into a new image (so no EXIF, GPS, comment or colour profile survives) and saved as a JPEG. The file
is sealed with the portal's secret key (portal/identity/secrets_at_rest.py) under a random name in
<data_dir>/card-photos, which nothing serves; only /insurance/cards/<id> opens it, for the patient,
those they share their account with, and staff.
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from carefront_sdk.models import CoverageRank
from PIL import Image, ImageOps, UnidentifiedImageError

from portal.coverage.tables import CardPhoto
from portal.database import transaction
from portal.i18n import N_
from portal.identity.secrets_at_rest import decrypt, encrypt
from portal.settings import Settings

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000
"""More than any phone camera takes by default; a decompression bomb declares far more."""
MIN_SIDE = 200
LONGEST_SIDE = 2400
"""Stored pictures are scaled down to this: enough to read the smallest print on a card."""
FORMATS = ("JPEG", "PNG", "WEBP")
STORED_TYPE = "image/jpeg"
FOLDER = "card-photos"
SIDES = ("front", "back")

EMPTY = N_("The file you chose is empty. Take the photo again, or choose another one.")
TOO_LARGE = N_("The photo is larger than 10 MB. Take it again at a lower resolution, or choose a smaller one.")
TOO_MANY_PIXELS = N_("The picture is too large to open. Take the photo again with your phone's camera.")
TOO_SMALL = N_("The picture is too small to read. Take the photo closer to the card.")
NOT_A_PHOTO = N_("That file is not a photo. Choose a JPEG, PNG or WebP picture of your card.")
NO_PHOTO = N_("Choose a photo of the front or the back of your card.")
BAD_NAME = N_("The file's name is not allowed. Rename the photo, or take it again.")


class PhotoRefused(Exception):
    """An upload the portal will not keep; ``reason`` is the message for the patient (a msgid)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CleanPhoto:
    data: bytes
    width: int
    height: int
    media_type: str = STORED_TYPE


def name_is_safe(file_name: str) -> bool:
    """A plain file name, as browsers send one: no folders, no parent references, no control characters."""
    return not any(mark in file_name for mark in ("/", "\\", "..")) and all(ord(char) >= 32 for char in file_name)


def clean(data: bytes, file_name: str) -> CleanPhoto:
    """The photo re-encoded without metadata, or :class:`PhotoRefused` saying why not."""
    if not name_is_safe(file_name):
        raise PhotoRefused(BAD_NAME)
    if not data:
        raise PhotoRefused(EMPTY)
    if len(data) > MAX_BYTES:
        raise PhotoRefused(TOO_LARGE)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            # Opening reads the header only: refuse a bomb by its declared size before decoding a pixel.
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoRefused(TOO_MANY_PIXELS)
            if min(width, height) < MIN_SIDE:
                raise PhotoRefused(TOO_SMALL)
            image.load()
            upright = ImageOps.exif_transpose(image)
            picture = _flatten(upright)
    except PhotoRefused:
        raise
    except Image.DecompressionBombError:
        raise PhotoRefused(TOO_MANY_PIXELS) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise PhotoRefused(NOT_A_PHOTO) from None
    picture.thumbnail((LONGEST_SIDE, LONGEST_SIDE))
    # A new image from raw pixels carries nothing of the upload but the picture.
    bare = Image.frombytes("RGB", picture.size, picture.tobytes())
    out = io.BytesIO()
    bare.save(out, format="JPEG", quality=85, optimize=True)
    return CleanPhoto(out.getvalue(), bare.width, bare.height)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with any transparency laid on white (a scanned card saved as a PNG may have some)."""
    if image.mode in {"RGBA", "LA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def folder(settings: Settings) -> Path:
    path = settings.data_dir / FOLDER
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


async def keep(
    settings: Settings,
    photo: CleanPhoto,
    *,
    patient_id: str,
    rank: CoverageRank,
    side: str,
    actor: str,
    now: datetime,
) -> uuid.UUID:
    """Seal and store the photo; it replaces the patient's earlier photo of that side of that card."""
    file_name = secrets.token_hex(16)
    sealed = encrypt(settings, base64.b64encode(photo.data).decode("ascii"))
    target = folder(settings) / file_name
    partial = target.with_suffix(".part")
    partial.write_text(sealed, encoding="ascii")
    os.replace(partial, target)
    public_id = uuid.uuid4()
    async with transaction():
        await (
            CardPhoto.update({CardPhoto.replaced: True})
            .where(
                (CardPhoto.patient_id == patient_id)
                & (CardPhoto.rank == rank.value)
                & (CardPhoto.side == side)
                & (CardPhoto.replaced == False)  # noqa: E712 - Piccolo builds SQL from the comparison
            )
            .run()
        )
        await CardPhoto.insert(
            CardPhoto(
                public_id=public_id,
                patient_id=patient_id,
                rank=rank.value,
                side=side,
                file_name=file_name,
                media_type=photo.media_type,
                width=photo.width,
                height=photo.height,
                uploaded_at=now,
                uploaded_by=actor,
            )
        ).run()
    return public_id


async def current_photos(patient_id: str) -> dict[tuple[CoverageRank, str], dict[str, Any]]:
    """The patient's card photos in use, by (rank, side)."""
    rows = (
        await CardPhoto.select(CardPhoto.public_id, CardPhoto.rank, CardPhoto.side, CardPhoto.uploaded_at)
        .where((CardPhoto.patient_id == patient_id) & (CardPhoto.replaced == False))  # noqa: E712
        .run()
    )
    return {(CoverageRank(row["rank"]), row["side"]): row for row in rows}


async def retire(patient_id: str, rank: CoverageRank) -> None:
    """A removed coverage's photos are no longer shown (the files stay for the record)."""
    await (
        CardPhoto.update({CardPhoto.replaced: True})
        .where((CardPhoto.patient_id == patient_id) & (CardPhoto.rank == rank.value))
        .run()
    )


async def find(public_id: uuid.UUID) -> dict[str, Any] | None:
    return await CardPhoto.select().where(CardPhoto.public_id == public_id).first().run()


def open_photo(settings: Settings, row: dict[str, Any]) -> bytes:
    """The stored picture's bytes (``SecretUnreadable`` if the file was altered or the key rotated)."""
    sealed = (folder(settings) / row["file_name"]).read_text(encoding="ascii")
    return base64.b64decode(decrypt(settings, sealed))
