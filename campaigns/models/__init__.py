"""Campaigns' tables, by part.

* ``segments``: saved member segments (a JSON condition tree; see ``campaigns.segments``);
* ``dashboard``: the brand dashboard's daily rollup;
* ``push``: push campaigns, their recipients, chunks, rollup counters and the contact cap.
"""

from campaigns.models.dashboard import customer_day_rollup  # noqa: F401
from campaigns.models.push import (  # noqa: F401
    Campaign,
    CampaignChunk,
    CampaignCounter,
    CampaignRecipient,
    CampaignSettings,
    MemberContact,
)
from campaigns.models.segments import Segment  # noqa: F401
