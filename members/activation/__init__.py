"""How a consumer becomes a member: activation and the ways that lead to it.

* ``services``: ``activate_member`` (a confirmed phone -> a member, first touch, welcome
  gifts), ``record_scan``, ``register_welcome_gift`` (other packages' gift hooks);
* ``card``: the H5 and native WeChat member-card doors into ``complete_activation``, and the
  card-activation jobs;
* ``sms``: verification codes for the H5 page (pluggable sender, sandbox inbox);
* ``qrcodes`` / ``posters``: store and guide QR codes, their statistics and printable posters;
* ``wechat_handlers``: the callback router's handlers for scans and member-card events.
"""

from members.activation.services import (
    activate_member,
    check_phone,
    record_scan,
    register_welcome_gift,
)

__all__ = ["activate_member", "check_phone", "record_scan", "register_welcome_gift"]
