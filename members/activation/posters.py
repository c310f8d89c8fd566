"""Printable QR posters (PNG) for stores and guides, one by one or zipped.

Chinese needs a CJK font. The first of ``POSTER_FONT`` (setting), ``fc-match :lang=zh`` and
the usual Debian paths (fonts-noto-cjk, fonts-wqy-microhei/zenhei) is used. Without one the
poster still renders, with each Chinese line replaced by its ASCII fallback (store code,
guide number, brand slug) so that nothing prints as empty boxes.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path

import qrcode
from flask import current_app
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 900, 1260
QR_SIZE = 600
RED = (200, 16, 46)
CJK_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
LATIN_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)


@functools.cache
def _fc_match() -> str | None:
    exe = shutil.which("fc-match")
    if not exe:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments
            [exe, "-f", "%{file}", ":lang=zh"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    # fc-match always answers something; only a real CJK family counts.
    names = ("cjk", "wqy", "hei", "song", "ming", "kai", "droidsansfallback")
    return out if out and any(n in out.lower() for n in names) else None


def cjk_font_path() -> str | None:
    """A font file able to draw Chinese, or None."""
    configured = current_app.config.get("POSTER_FONT")
    for path in (configured, _fc_match(), *CJK_PATHS):
        if path and Path(path).is_file():
            return path
    return None


def _font(size: int, cjk: str | None) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in (cjk, *LATIN_PATHS):
        if path and Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def qr_image(data: str, size: int = QR_SIZE) -> Image.Image:
    """The QR code of ``data`` (the URL WeChat returned for the ticket), ``size`` px square."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(data)
    code.make(fit=True)
    img = code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    return img.resize((size, size), Image.NEAREST)


def _line(text: str, fallback: str, cjk: str | None) -> str:
    return text if cjk or text.isascii() else fallback


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, font, fill) -> None:
    left, _top, right, _bottom = draw.textbbox((0, 0), text, font=font)
    while right - left > WIDTH - 60 and len(text) > 4:  # shorten what does not fit
        text = text[:-2] + "…"
        left, _top, right, _bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((WIDTH - (right - left)) // 2, y), text, font=font, fill=fill)


def render_poster(
    *,
    brand: tuple[str, str],
    title: tuple[str, str],
    subtitle: tuple[str, str],
    call_to_action: tuple[str, str],
    qr_data: str,
    footer: str = "",
) -> bytes:
    """A PNG poster. Each text is (text, ASCII fallback used when no CJK font exists)."""
    cjk = cjk_font_path()
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, WIDTH, 150), fill=RED)
    _centered(draw, 45, _line(*brand, cjk), _font(56, cjk), "white")
    _centered(draw, 190, _line(*title, cjk), _font(54, cjk), (20, 20, 20))
    if subtitle[0]:
        _centered(draw, 265, _line(*subtitle, cjk), _font(34, cjk), (100, 100, 100))
    img.paste(qr_image(qr_data), ((WIDTH - QR_SIZE) // 2, 330))
    _centered(draw, 960, _line(*call_to_action, cjk), _font(40, cjk), RED)
    if footer:
        _centered(draw, 1180, footer, _font(24, None), (150, 150, 150))
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
