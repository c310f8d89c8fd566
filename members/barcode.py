"""The till code drawn for a cashier's scanner: a Code 128 barcode (set C, pairs of digits)
and a QR code, both as inline SVG made on the server (no script library on the phone).

Code 128 set C packs two digits in one symbol, so the 18-digit till code is 9 symbols plus
start, checksum and stop: short bars that every till scanner reads from a phone screen.
"""

from __future__ import annotations

import qrcode
from markupsafe import Markup

# Bar/space widths (in modules) of the 107 Code 128 symbols, values 0..106 (ISO/IEC 15417).
PATTERNS = (
    "212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 "
    "221312 231212 112232 122132 122231 113222 123122 123221 223211 221132 "
    "221231 213212 223112 312131 311222 321122 321221 312212 322112 322211 "
    "212123 212321 232121 111323 131123 131321 112313 132113 132311 211313 "
    "231113 231311 112133 112331 132131 113123 113321 133121 313121 211331 "
    "231131 213113 213311 213131 311123 311321 331121 312113 312311 332111 "
    "314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 "
    "112412 122114 122411 142112 142211 241211 221114 413111 241112 134111 "
    "111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 "
    "214121 412121 111143 111341 131141 114113 114311 411113 411311 113141 "
    "114131 311141 411131 211412 211214 211232 2331112"
).split()
START_C, STOP = 105, 106
QUIET = 10  # modules of white space either side, as scanners require


def code128c_symbols(digits: str) -> list[int]:
    """Symbol values (start C, digit pairs, checksum, stop) for an even run of digits."""
    if not digits or len(digits) % 2 or not (digits.isascii() and digits.isdigit()):
        raise ValueError("Code 128 set C takes an even number of digits")
    values = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    check = (START_C + sum(i * v for i, v in enumerate(values, start=1))) % 103
    return [START_C, *values, check, STOP]


def code128_svg(digits: str, *, height: int = 60) -> Markup:
    """The barcode as an SVG of black bars, one unit per module (scaled by CSS)."""
    bars, x = [], QUIET
    for symbol in code128c_symbols(digits):
        for i, width in enumerate(PATTERNS[symbol]):
            w = int(width)
            if i % 2 == 0:
                bars.append(f'<rect x="{x}" y="0" width="{w}" height="{height}"/>')
            x += w
    total = x + QUIET
    return Markup(  # noqa: S704 - numbers only, made here
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {total} {height}" '
        f'preserveAspectRatio="none" shape-rendering="crispEdges" role="img" '
        f'class="barcode" data-modules="{total}">'
        f'<rect width="{total}" height="{height}" fill="#fff"/><g fill="#000">'
        + "".join(bars)
        + "</g></svg>"
    )


# A fixed mask pattern: every mask gives a valid code that scanners read; letting the library
# score all eight (ISO/IEC 18004's penalty rules) cost most of the card page's CPU time.
QR_MASK = 2


def qr_matrix(text: str) -> list[list[bool]]:
    """The QR code's modules (medium error correction, 2-module border), True for dark."""
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=2, mask_pattern=QR_MASK
    )
    qr.add_data(text)
    qr.make(fit=True)
    return qr.get_matrix()


def qr_svg(text: str) -> Markup:
    """The same code as a QR: one SVG path, a rectangle per run of dark modules in a row."""
    matrix = qr_matrix(text)
    size = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return Markup(  # noqa: S704 - numbers only, made here
        f'<svg width="{size}mm" height="{size}mm" version="1.1" viewBox="0 0 {size} {size}" '
        f'xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges">'
        f'<rect fill="white" x="0" y="0" width="100%" height="100%"/>'
        f'<path d="{"".join(runs)}" fill="#000"/></svg>'
    )
