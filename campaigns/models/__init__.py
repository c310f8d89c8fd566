"""The campaigns package's tables."""

from campaigns.models.push import (  # noqa: F401
    Campaign,
    CampaignChunk,
    CampaignCounter,
    CampaignRecipient,
    CampaignSettings,
    MemberContact,
)
