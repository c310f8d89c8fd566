"""The baseline of the callback benchmark: a bare Flask endpoint answering a fixed XML.

It reads the request body like the real callback does, and answers an encrypted-reply-shaped
XML of the same size, so that the two runs differ only in the work the callback does.
"""

from __future__ import annotations

from flask import Flask, Response, request

FIXED_REPLY = (
    "<xml>\n<Encrypt><![CDATA[" + "A" * 408 + "]]></Encrypt>\n"
    "<MsgSignature><![CDATA[" + "0" * 40 + "]]></MsgSignature>\n"
    "<TimeStamp>1700000000</TimeStamp>\n<Nonce><![CDATA[1234567890]]></Nonce>\n</xml>"
)

app = Flask(__name__)


@app.post("/wechat/<slug>/callback")
def callback(slug: str) -> Response:
    request.get_data()
    return Response(FIXED_REPLY, mimetype="application/xml")


@app.get("/")
def ready() -> str:
    return "ok"
