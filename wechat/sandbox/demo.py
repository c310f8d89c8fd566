"""Demo step of the sandbox: where to find the phone simulator."""

from __future__ import annotations

from core.cli import demo_step


@demo_step(90)
def demo_phone() -> list[str]:
    """Print the simulator's URL (the demo brand's account is already known to the sandbox)."""
    return [
        "Phone simulator: http://127.0.0.1:5000/sandbox/phone",
        "  pick a consumer, scan a store's QR code, chat with the demo brand and tap its menu",
    ]
