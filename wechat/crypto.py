"""WeChat callback signatures and safe-mode message encryption (AES-256-CBC).

Written on ``cryptography`` directly rather than on wechatpy's ``PrpCrypto``: the random
prefix can be fixed (WeChat's official test vector needs it), the previous EncodingAESKey
can be tried cheaply, and every way a ciphertext can be bad raises one exception type.

Framing: ``16 random bytes + 4-byte big-endian length + message + appid``, PKCS#7-padded to
32-byte blocks; key = ``b64decode(EncodingAESKey + "=")``, IV = the key's first 16 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class CryptoError(ValueError):
    """A ciphertext that does not decrypt, is badly framed, or belongs to another appid."""


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the lexicographically sorted parts, joined."""
    # SHA-1 is what WeChat's protocol specifies; it is not our choice of hash.
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324


def signature_matches(given: str | None, *parts: str) -> bool:
    """Constant-time check of a signature sent by WeChat."""
    if not given:
        return False
    return hmac.compare_digest(sha1_signature(*parts).encode(), given.encode("utf-8", "replace"))


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("EncodingAESKey is not base64") from exc
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise CryptoError("EncodingAESKey must be 43 characters")
    return key


class MessageCrypto:
    """Encrypt and decrypt callback messages for one EncodingAESKey and appid."""

    def __init__(self, encoding_aes_key: str, appid: str):
        key = decode_aes_key(encoding_aes_key)
        self.encoding_aes_key = encoding_aes_key
        # One Cipher per key: its encryptor and decryptor contexts are single-use.
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
        self.appid = appid.encode()

    def encrypt(self, message: str | bytes, *, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext of ``message``; ``random_prefix`` is fixed only for test vectors."""
        body = message.encode() if isinstance(message, str) else message
        prefix = os.urandom(16) if random_prefix is None else random_prefix
        if len(prefix) != 16:
            raise CryptoError("the random prefix is 16 bytes")
        data = prefix + struct.pack(">I", len(body)) + body + self.appid
        pad = BLOCK - len(data) % BLOCK
        data += bytes([pad]) * pad
        enc = self._cipher.encryptor()
        return base64.b64encode(enc.update(data) + enc.finalize()).decode()

    def decrypt(self, ciphertext: str) -> bytes:
        """The message inside ``ciphertext``; CryptoError unless it is well formed for our appid."""
        try:
            # strict: only the base64 alphabet, padding only at the end
            raw = binascii.a2b_base64(ciphertext.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("ciphertext is not base64") from exc
        if not raw or len(raw) % 16:
            raise CryptoError("ciphertext length is not a multiple of the block size")
        dec = self._cipher.decryptor()
        data = dec.update(raw) + dec.finalize()
        pad = data[-1]
        if not 1 <= pad <= BLOCK or data[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        data = data[:-pad]
        if len(data) < 20:
            raise CryptoError("message too short")
        (length,) = struct.unpack(">I", data[16:20])
        if 20 + length > len(data):
            raise CryptoError("bad length")
        body, appid = data[20 : 20 + length], data[20 + length :]
        if not hmac.compare_digest(appid, self.appid):
            raise CryptoError("message is for another appid")
        return body


def decrypt_with_any(ciphertext: str, keys: Iterable[str | None], appid: str) -> tuple[bytes, str]:
    """Decrypt with the first key that works (current, then previous); returns (plain, key)."""
    last: CryptoError | None = None
    for aes_key in keys:
        if not aes_key:
            continue
        try:
            return MessageCrypto(aes_key, appid).decrypt(ciphertext), aes_key
        except CryptoError as exc:
            last = exc
    raise last or CryptoError("the brand has no EncodingAESKey")


def decrypt_with_first(
    ciphertext: str, cryptos: Iterable[MessageCrypto | CryptoError]
) -> tuple[bytes, MessageCrypto]:
    """Like ``decrypt_with_any`` with prepared keys (a CryptoError stands for a bad key)."""
    last: CryptoError | None = None
    for crypto in cryptos:
        if isinstance(crypto, CryptoError):
            last = crypto
            continue
        try:
            return crypto.decrypt(ciphertext), crypto
        except CryptoError as exc:
            last = exc
    raise last or CryptoError("the brand has no EncodingAESKey")


def encrypted_envelope(
    *,
    message: str,
    token: str,
    nonce: str,
    timestamp: str,
    aes_key: str | None = None,
    appid: str | None = None,
    crypto: MessageCrypto | None = None,
) -> str:
    """The safe-mode reply: ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>``,
    encrypted with ``crypto`` or else with ``aes_key`` and ``appid``."""
    if crypto is None:
        crypto = MessageCrypto(aes_key or "", appid or "")
    encrypt = crypto.encrypt(message)
    sig = sha1_signature(token, timestamp, nonce, encrypt)
    return (
        f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
    )
