"""One delivery address check for every package that ships something (shop orders, game
gifts): the same fields, limits and messages everywhere."""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from core.errors import ValidationError
from core.validators import ADDRESS_FIELDS, check_address

GOOD = {
    "name": " 张三 ",
    "phone": "+86 139-0000-0000",
    "province": "上海",
    "city": "上海",
    "district": "",
    "detail": "南京西路1号",
}


def test_a_good_address_comes_back_trimmed_with_its_phone_normalised(ctx):
    out = check_address(GOOD)
    assert out == {
        "name": "张三",
        "phone": "13900000000",
        "province": "上海",
        "city": "上海",
        "district": "",
        "detail": "南京西路1号",
    }


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "  "}, "name", "此项必填。"),
        ({"city": None}, "city", "此项必填。"),
        ({"detail": ["南京西路"]}, "detail", "此项必填。"),
        ({"detail": "路" * (ADDRESS_FIELDS["detail"] + 1)}, "detail", "最多 120 个字符。"),
        ({"name": "张\x00三"}, "name", "请删除其中的控制字符。"),
        ({"detail": "1号\x7f"}, "detail", "请删除其中的控制字符。"),
        ({"phone": "010-12345678"}, "phone", "请输入手机号码。"),
    ],
)
def test_a_bad_field_is_named_with_a_chinese_message(ctx, change, field, message):
    with pytest.raises(ValidationError) as exc, force_locale("zh"):
        check_address(GOOD | change, prefix="address.")
    assert exc.value.field == f"address.{field}"
    with force_locale("zh"):
        assert str(exc.value.message) == message
