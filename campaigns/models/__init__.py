"""Campaigns' tables, by part.

* ``segments``: saved member segments (a JSON condition tree; see ``campaigns.segments``);
* ``dashboard``: the brand dashboard's daily rollup.
"""

from campaigns.models.dashboard import customer_day_rollup  # noqa: F401
from campaigns.models.segments import Segment  # noqa: F401
