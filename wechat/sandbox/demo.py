"""Demo step of the sandbox: where to find the phone simulator."""

from __future__ import annotations

from core.cli import demo_step
from wechat.sandbox import store


@demo_step(90)
def demo_phone() -> list[str]:
    """Print the simulator's URL (the demo brand's account is already known to the sandbox)."""
    return [
        "Phone simulator: http://127.0.0.1:5000/sandbox/phone",
        "  pick a consumer, scan a store's QR code, chat with the demo brand and tap its menu",
    ]


def demo_member_openid(appid: str | None, number: int, nickname: str) -> str:
    """A demo member as a consumer of the sandbox who follows the brand's account, so the
    messages sent to them arrive in the phone simulator."""
    consumer = store.ensure_consumer(f"demo-member-{number:04d}", nickname)
    if not appid:
        return f"odemo-member-{number:04d}"
    openid = store.openid_for(appid, consumer["uid"])
    store.set_following(appid, openid, True)
    return openid
