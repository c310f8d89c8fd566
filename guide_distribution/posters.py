"""A guide's shop poster (PNG, Pillow): the brand, the guide's face, name and store, their
intro, and the mini-program code that opens their shop. Fonts as the member QR posters
(``members.activation.posters``): a CJK font when one exists, else each Chinese line falls
back to an ASCII text so that nothing prints as empty boxes."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from members.activation.posters import LATIN_PATHS, RED, cjk_font_path

WIDTH, HEIGHT = 750, 1200
FACE = 220
CODE = 400


def _font(size: int, cjk: str | None):
    for path in (cjk, *LATIN_PATHS):
        if path and Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def _text(value: tuple[str, str], cjk: str | None) -> str:
    text, fallback = value
    return text if cjk or text.isascii() else fallback


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, font, fill) -> None:
    left, _t, right, _b = draw.textbbox((0, 0), text, font=font)
    while right - left > WIDTH - 60 and len(text) > 4:
        text = text[:-2] + "…"
        left, _t, right, _b = draw.textbbox((0, 0), text, font=font)
    draw.text(((WIDTH - (right - left)) // 2, y), text, font=font, fill=fill)


def _face(photo: bytes | None, initial: str, cjk: str | None) -> Image.Image:
    size = FACE
    if photo:
        try:
            img = ImageOps.fit(Image.open(io.BytesIO(photo)).convert("RGB"), (size, size))
        except OSError:
            img = None
    else:
        img = None
    if img is None:
        img = Image.new("RGB", (size, size), (240, 226, 228))
        d = ImageDraw.Draw(img)
        f = _font(110, cjk)
        left, top, right, bottom = d.textbbox((0, 0), initial, font=f)
        d.text(((size - (right - left)) // 2 - left, (size - (bottom - top)) // 2 - top),
               initial, font=f, fill=RED)  # fmt: skip
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
    out = Image.new("RGB", (size, size), "white")
    out.paste(img, (0, 0), mask)
    return out


def render(
    *,
    brand: tuple[str, str],
    name: tuple[str, str],
    store: tuple[str, str],
    intro: tuple[str, str],
    call_to_action: tuple[str, str],
    photo: bytes | None,
    code_png: bytes,
) -> bytes:
    """The poster as PNG bytes. Each text is (text, ASCII fallback)."""
    cjk = cjk_font_path()
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, WIDTH, 130), fill=RED)
    _centered(draw, 38, _text(brand, cjk), _font(48, cjk), "white")
    face_name = _text(name, cjk)
    img.paste(_face(photo, face_name[:1] or "G", cjk), ((WIDTH - FACE) // 2, 160))
    _centered(draw, 400, face_name, _font(46, cjk), (20, 20, 20))
    if store[0]:
        _centered(draw, 462, _text(store, cjk), _font(30, cjk), (110, 110, 110))
    if intro[0]:
        _centered(draw, 510, _text(intro, cjk), _font(28, cjk), (80, 80, 80))
    code = Image.open(io.BytesIO(code_png)).convert("RGB").resize((CODE, CODE))
    img.paste(code, ((WIDTH - CODE) // 2, 580))
    _centered(draw, 1010, _text(call_to_action, cjk), _font(34, cjk), RED)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
