"""Guide distribution's tables, by part.

* ``settings``: the brand's distribution rules (one row per brand);
* ``binding``: each member's service store and exclusive guide, its history, share-link opens;
* ``attribution``: the guide and stores frozen on each order, the performance ledger and its
  daily rollup.
"""

from guide_distribution.models.attribution import (  # noqa: F401
    SOURCE_BINDING,
    SOURCE_NONE,
    SOURCE_SHARE_LINK,
    SOURCE_TILL,
    SOURCES,
    GuideSalesDay,
    OrderAttribution,
    PerformanceLine,
)
from guide_distribution.models.binding import (  # noqa: F401
    BindingEvent,
    CustomerBinding,
    GuideVisit,
)
from guide_distribution.models.commission import (  # noqa: F401
    CommissionEntry,
    CommissionLine,
    CommissionRule,
    CommissionStatement,
    CommissionTier,
    GuideAccount,
    Payout,
    PayoutEvent,
)
from guide_distribution.models.settings import (  # noqa: F401
    BIND_EVERY_SCAN,
    BIND_FIRST,
    BIND_MODES,
    BIND_NEW_ONLY,
    DistributionSettings,
)
from guide_distribution.models.shops import (  # noqa: F401
    GuideProfile,
    GuideShopItem,
)
from guide_distribution.models.workbench import (  # noqa: F401
    MATERIAL_IMAGES_MAX,
    MATERIAL_TEXT_MAX,
    GuideTarget,
    GuideTask,
    GuideTaskAssignee,
    GuideTaskSend,
    Material,
)
