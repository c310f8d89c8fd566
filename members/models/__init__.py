"""The members package's tables, one module per topic; import them from here.

* ``member``: Member, channel identities, merges, first-touch attribution, card numbers;
* ``tags``: the tag library, tags on members and their history;
* ``tiers``: tier settings and levels, the activity ledger behind them;
* ``qr``: store and guide QR codes, their scan events, WeChat member-card codes;
* ``imports``: runs of the CSV import;
* ``store_location``: store coordinates for "stores near me";
* ``consent``: subscribe-message consent per template and its history;
* ``columns``: the brand column and member key the member-owned tables share.
"""

from members.models.consent import SubscribeConsent, SubscribeConsentEvent, SubscribeConsentUse
from members.models.imports import MemberImport
from members.models.member import (
    ACTIVE,
    DELETED,
    GENDERS,
    IDENTITY_KINDS,
    MERGED,
    SOURCES,
    STATUSES,
    Member,
    MemberAttribution,
    MemberIdentity,
    MemberMerge,
    card_no_for,
    card_no_sql,
    luhn_digit,
)
from members.models.qr import (
    EV_ACTIVATION,
    EV_FOLLOW,
    EV_SCAN,
    QR_GUIDE,
    QR_STORE,
    MemberCardCode,
    MemberQrCode,
    MemberQrEvent,
)
from members.models.store_location import StoreLocation
from members.models.tags import ADDED, REMOVED, TAG_KINDS, MemberTag, TagDefinition, TagHistory
from members.models.tiers import (
    BASIS_GROWTH,
    BASIS_SPEND,
    GROWTH,
    PURCHASE,
    REFUND,
    MemberActivity,
    TierLevel,
    TierSettings,
)

__all__ = [
    "ACTIVE",
    "ADDED",
    "BASIS_GROWTH",
    "BASIS_SPEND",
    "DELETED",
    "EV_ACTIVATION",
    "EV_FOLLOW",
    "EV_SCAN",
    "GENDERS",
    "GROWTH",
    "IDENTITY_KINDS",
    "MERGED",
    "PURCHASE",
    "QR_GUIDE",
    "QR_STORE",
    "REFUND",
    "REMOVED",
    "SOURCES",
    "STATUSES",
    "TAG_KINDS",
    "Member",
    "MemberActivity",
    "MemberAttribution",
    "MemberCardCode",
    "MemberIdentity",
    "MemberImport",
    "MemberMerge",
    "MemberQrCode",
    "MemberQrEvent",
    "MemberTag",
    "StoreLocation",
    "SubscribeConsent",
    "SubscribeConsentEvent",
    "SubscribeConsentUse",
    "TagDefinition",
    "TagHistory",
    "TierLevel",
    "TierSettings",
    "card_no_for",
    "card_no_sql",
    "luhn_digit",
]
