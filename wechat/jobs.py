"""Jobs of the WeChat package: slow answers to members and the menu publication."""

from __future__ import annotations

import logging

from sqlalchemy import select

from core.db import utcnow
from core.jobs import job
from core.tenancy import use_brand

log = logging.getLogger(__name__)


@job("high", timeout=30, retries=3, backoff=(5, 30, 120))
def send_customer_message(brand_id: int, openid: str, message: dict) -> None:
    """Send a customer-service message (the slow half of an answer to a member)."""
    from wechat import gateway

    try:
        gateway.send_customer_message(brand_id, openid, message)
    except gateway.RetryableError:
        raise
    except gateway.WeChatAPIError as exc:
        # 45015 (48-hour window closed), 45047 (quota), 40003 (bad openid): a retry won't help.
        log.warning("customer message to %s not sent: errcode %s", openid, exc.errcode)


@job("default", timeout=60, retries=4, backoff=(10, 60, 300, 900))
def publish_menu(brand_id: int) -> None:
    """Publish the brand's saved menu to WeChat and record the outcome on the settings."""
    from wechat import gateway
    from wechat.models import ChatbotSettings

    with use_brand(brand_id):
        from core.db import db

        settings = db.session.execute(select(ChatbotSettings)).scalar_one_or_none()
        if settings is None or not settings.menu:
            return
        try:
            gateway.create_menu(brand_id, settings.menu)
        except gateway.RetryableError:
            raise
        except gateway.WeChatAPIError as exc:
            settings.menu_status = "failed"
            settings.menu_error = f"{exc.errcode}: {exc}"[:255]
            return
        settings.menu_status = "published"
        settings.menu_error = None
        settings.menu_published_at = utcnow()
