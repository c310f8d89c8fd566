"""Chinese names of the members package's codes (core.labels): statuses, sources, channels,
tag kinds and sources, system tags, import statuses, tier bases and genders."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.labels import register_labels

MEMBER_STATUS = {
    "active": _l("Active member"),
    "merged": _l("Merged into another member"),
    "deleted": _l("Deleted member"),
}
MEMBER_SOURCE = {
    "oa": _l("Official account"),
    "mp": _l("Mini program"),
    "card": _l("WeChat member card"),
    "pos": _l("Store till"),
    "import": _l("Import"),
    "console": _l("Console"),
    "jd": _l("JD.com"),
    "meituan": _l("Meituan"),
    "demo": _l("Demo data"),
    "qr": _l("QR code scan"),
    "scan": _l("QR code scan"),
    "staff": _l("Store clerk"),
    "system": _l("System"),
    "guide": _l("Guide"),
}
IDENTITY_KIND = {
    "oa_openid": _l("Official account"),
    "mp_openid": _l("Mini program"),
    "unionid": _l("WeChat UnionID"),
    "jd": _l("JD.com"),
    "meituan": _l("Meituan"),
    "pos": _l("Store till"),
}
TAG_KIND = {
    "behaviour": _l("Behaviour"),
    "brand": _l("Brand"),
    "product": _l("Product"),
    "platform": _l("Platform"),
}
TAG_SOURCE = {"staff": _l("Staff"), "system": _l("System"), "import": _l("Import")}
TAG_REASON = {
    "quick tag": _l("Quick tag"),
    "purchased again": _l("Purchased again"),
    "activated": _l("Card activated"),
    "visited_store": _l("Visited a store"),
    "purchased": _l("Purchased"),
    "lapsed_90d": _l("No purchase in 90 days"),
    "demo": _l("Demo data"),
    "campaign_received": _l("Received a campaign push"),
    "campaign_opened": _l("Opened a campaign push"),
    "campaign_redeemed": _l("Redeemed a campaign coupon"),
}
SYSTEM_TAG = {
    "activated": _l("Card activated"),
    "visited_store": _l("Visited a store"),
    "purchased": _l("Purchased"),
    "lapsed_90d": _l("No purchase in 90 days"),
    "campaign_received": _l("Received a campaign push"),
    "campaign_opened": _l("Opened a campaign push"),
    "campaign_redeemed": _l("Redeemed a campaign coupon"),
}
ATTRIBUTION_KIND = {"first_touch": _l("First touch"), "scan": _l("Scan")}
IMPORT_STATUS = {
    "pending": _l("Waiting"),
    "running": _l("Running"),
    "done": _l("Done"),
    "failed": _l("Failed"),
}
GENDER = {"m": _l("Male"), "f": _l("Female")}
MERGE_REASON = {
    "same phone at activation": _l("Same phone number at activation"),
    "demo": _l("Demo data"),
}
MERGE_MOVED = {
    "identities": _l("Identities"),
    "tags_already_on_kept": _l("Tags already on the kept member"),
    "tags": _l("Tags"),
    "tag_history": _l("Tag history"),
    "activity": _l("Activity"),
    "attributions": _l("Store and guide history"),
}

for _kind, _table in {
    "member_status": MEMBER_STATUS,
    "member_source": MEMBER_SOURCE,
    "identity_kind": IDENTITY_KIND,
    "tag_kind": TAG_KIND,
    "tag_source": TAG_SOURCE,
    "tag_reason": TAG_REASON,
    "system_tag": SYSTEM_TAG,
    "attribution_kind": ATTRIBUTION_KIND,
    "import_status": IMPORT_STATUS,
    "gender": GENDER,
    "merge_reason": MERGE_REASON,
    "merge_moved": MERGE_MOVED,
}.items():
    register_labels(_kind, _table)

register_labels(
    "job",
    {
        "members.activation.card.activate_card_job": _l("Activate a WeChat member card"),
        "members.activation.card.native_activate_job": _l("Activate a member card in WeChat"),
        "members.activation.card.native_activate_by_code_job": _l(
            "Activate a member card by its code"
        ),
        "members.jobs.review_due_tiers": _l("Yearly tier review"),
        "members.jobs.tag_lapsed_members": _l("Tag members with no purchase in 90 days"),
        "members.jobs.tag_lapsed_brand": _l("Tag a brand's members with no purchase in 90 days"),
        "members.jobs.import_members_job": _l("Import members"),
    },
)
register_labels(
    "audit_object",
    {
        "member": _l("Member"),
        "tag_definition": _l("Tag"),
        "tier_level": _l("Tier level"),
        "tier_settings": _l("Tier rules"),
        "member_import": _l("Member import"),
    },
)
register_labels(
    "audit_field",
    {
        "member.source": _l("Source"),
        "member.tier_id": _l("Tier"),
        "member.guide_id": _l("Guide"),
        "member.gender": _l("Gender"),
        "member.birthday": _l("Birthday"),
        "member.activated_at": _l("Activated"),
        "tag_definition.kind": _l("Kind"),
        "tag_definition.is_quick": _l("Quick tag"),
        "tier_level.rank": _l("Rank"),
        "tier_level.threshold": _l("Threshold"),
        "tier_level.points_multiplier_permille": _l("Points multiplier"),
        "tier_level.birthday_gift": _l("Birthday gift"),
        "tier_settings.basis": _l("Levels reached by"),
        "tier_settings.review_month": _l("Review month"),
        "tier_settings.review_day": _l("Review day"),
        "tier_settings.growth_per_yuan": _l("Growth value per yuan spent"),
    },
)
