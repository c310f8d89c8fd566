"""The rotating member code for the till."""

from __future__ import annotations

import datetime as dt

import pytest

from core.tenancy import use_brand
from members import tillcode
from tests import factories as f

T0 = dt.datetime(2026, 3, 10, 4, 0, 5, tzinfo=dt.UTC)


def test_code_round_trip_within_current_and_previous_minute(world):
    code = tillcode.make_till_code(member_id=42, now=T0)
    assert len(code) == 18 and code.isdigit() and code.startswith("9")
    assert tillcode.verify_till_code(code, now=T0) == 42
    assert tillcode.verify_till_code(code, now=T0 + dt.timedelta(seconds=54)) == 42
    assert tillcode.verify_till_code(code, now=T0 + dt.timedelta(seconds=100)) == 42
    # The code rotates every 60 s.
    assert tillcode.make_till_code(member_id=42, now=T0 + dt.timedelta(seconds=60)) != code


def test_expired_code_is_refused_clearly(world):
    code = tillcode.make_till_code(member_id=42, now=T0)
    with pytest.raises(tillcode.TillCodeExpired) as exc:
        tillcode.verify_till_code(code, now=T0 + dt.timedelta(minutes=3))
    assert exc.value.code == "till_code_expired" and exc.value.field == "code"
    with pytest.raises(tillcode.TillCodeInvalid):
        tillcode.verify_till_code(code, now=T0 + dt.timedelta(hours=1))
    # A code from the future (clock games) is not accepted either.
    with pytest.raises(tillcode.TillCodeError):
        tillcode.verify_till_code(code, now=T0 - dt.timedelta(minutes=2))


def test_tampered_codes_are_refused(world):
    code = tillcode.make_till_code(member_id=1234, now=T0)
    for i in range(1, 18):
        digit = str((int(code[i]) + 1) % 10)
        tampered = code[:i] + digit + code[i + 1 :]
        with pytest.raises(tillcode.TillCodeInvalid):
            tillcode.verify_till_code(tampered, now=T0)
    for bad in ("", "abc", code[:-1], code + "1", "1" + code[1:], "９" * 18, None):
        with pytest.raises(tillcode.TillCodeInvalid):
            tillcode.verify_till_code(bad, now=T0)


def test_code_hides_the_member_id_and_is_bound_to_the_brand(world):
    codes = {tillcode.make_till_code(member_id=m, now=T0) for m in range(1, 200)}
    assert len(codes) == 199
    # Neighbouring ids do not give neighbouring codes, and the id is not in clear.
    a = tillcode.make_till_code(member_id=1000, now=T0)
    b = tillcode.make_till_code(member_id=1001, now=T0)
    assert sum(x != y for x, y in zip(a[1:11], b[1:11], strict=True)) >= 5
    assert "1000" not in a[1:11] or "1001" not in b[1:11]
    other = f.brand()
    with use_brand(other.id), pytest.raises(tillcode.TillCodeInvalid):
        tillcode.verify_till_code(a, now=T0)
    with use_brand(other.id):
        assert tillcode.make_till_code(member_id=1000, now=T0) != a


def test_member_id_range(world):
    big = tillcode.MAX_MEMBER_ID
    assert tillcode.verify_till_code(tillcode.make_till_code(member_id=big, now=T0), now=T0) == big
    for bad in (0, -1, big + 1):
        with pytest.raises(ValueError):
            tillcode.make_till_code(member_id=bad, now=T0)


def test_qr_svg_draws_exactly_the_dark_modules():
    import re

    from members import barcode

    code = "123456789012345678"
    matrix = barcode.qr_matrix(code)
    svg = str(barcode.qr_svg(code))
    drawn = set()
    for x, y, w in re.findall(r"M(\d+),(\d+)h(\d+)v1h-\d+z", svg):
        drawn.update((int(x) + i, int(y)) for i in range(int(w)))
    dark = {(x, y) for y, row in enumerate(matrix) for x, v in enumerate(row) if v}
    assert drawn == dark and len(dark) > 100
    assert f'viewBox="0 0 {len(matrix)} {len(matrix)}"' in svg
