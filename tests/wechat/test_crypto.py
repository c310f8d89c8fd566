"""Safe-mode crypto against WeChat's official test vector and an independent implementation."""

from __future__ import annotations

import pytest

from tests.support.wechat import aes_decrypt, aes_encrypt, sign
from wechat.crypto import (
    CryptoError,
    MessageCrypto,
    decrypt_with_any,
    encrypted_envelope,
    sha1_signature,
    signature_matches,
)

# From WeChat's own message-crypto sample.
VECTOR_TOKEN = "pamtest"
VECTOR_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
VECTOR_APPID = "wxb11529c136998cb6"
VECTOR_PREFIX = b"aaaabbbbccccdddd"
VECTOR_PLAIN = "我是中文abcd123"
VECTOR_CIPHER = (
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
)


def test_official_vector_encrypts_to_the_published_ciphertext():
    crypto = MessageCrypto(VECTOR_KEY, VECTOR_APPID)
    assert crypto.encrypt(VECTOR_PLAIN, random_prefix=VECTOR_PREFIX) == VECTOR_CIPHER


def test_official_vector_decrypts_to_the_published_plaintext():
    assert MessageCrypto(VECTOR_KEY, VECTOR_APPID).decrypt(VECTOR_CIPHER).decode() == VECTOR_PLAIN


def test_official_vector_with_another_appid_is_refused():
    with pytest.raises(CryptoError):
        MessageCrypto(VECTOR_KEY, "wx0000000000000000").decrypt(VECTOR_CIPHER)


def test_independent_implementation_agrees_both_ways():
    ours = MessageCrypto(VECTOR_KEY, VECTOR_APPID)
    message = "<xml><Content><![CDATA[积分 ]]]]><![CDATA[> 🎉]]></Content></xml>" * 7
    assert aes_decrypt(ours.encrypt(message), VECTOR_KEY) == (
        message.encode(),
        VECTOR_APPID.encode(),
    )
    assert ours.decrypt(aes_encrypt(message.encode(), VECTOR_KEY, VECTOR_APPID)) == (
        message.encode()
    )


@pytest.mark.parametrize("length", [0, 1, 11, 12, 31, 32, 33, 1000])
def test_every_padding_length_round_trips(length):
    crypto = MessageCrypto(VECTOR_KEY, VECTOR_APPID)
    assert crypto.decrypt(crypto.encrypt(b"a" * length)) == b"a" * length


def test_previous_key_is_tried_when_the_current_one_fails():
    old = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
    cipher = MessageCrypto(old, VECTOR_APPID).encrypt("hello")
    plain, used = decrypt_with_any(cipher, [VECTOR_KEY, old], VECTOR_APPID)
    assert (plain, used) == (b"hello", old)
    with pytest.raises(CryptoError):
        decrypt_with_any(cipher, [VECTOR_KEY, None], VECTOR_APPID)


def test_signature_is_sha1_of_the_sorted_parts():
    assert sha1_signature(VECTOR_TOKEN, "1409304348", "xxxxxx") == sign(
        "1409304348", "xxxxxx", VECTOR_TOKEN
    )
    good = sign(VECTOR_TOKEN, "1", "n")
    assert signature_matches(good, VECTOR_TOKEN, "1", "n")
    assert not signature_matches(good.upper(), VECTOR_TOKEN, "1", "n")
    assert not signature_matches("签名", VECTOR_TOKEN, "1", "n")
    assert not signature_matches(None, VECTOR_TOKEN, "1", "n")


def test_envelope_is_signed_and_opens_independently():
    import xml.etree.ElementTree as ET  # noqa: N817

    xml = encrypted_envelope(
        message="<xml><a>1</a></xml>",
        token=VECTOR_TOKEN,
        aes_key=VECTOR_KEY,
        appid=VECTOR_APPID,
        nonce="n0nce",
        timestamp="1700000000",
    )
    env = ET.fromstring(xml)
    enc = env.findtext("Encrypt")
    assert env.findtext("MsgSignature") == sign(VECTOR_TOKEN, "1700000000", "n0nce", enc)
    assert aes_decrypt(enc, VECTOR_KEY)[0] == b"<xml><a>1</a></xml>"


@pytest.mark.parametrize("bad", ["", "abc", "a" * 44, "!" * 43])
def test_bad_encoding_aes_keys_are_refused(bad):
    with pytest.raises(CryptoError):
        MessageCrypto(bad, VECTOR_APPID)
