"""Tiers (会员等级) and tags (标签), the two ways a brand sorts its members.

* ``tiers``: levels reached by rolling-12-month spend or growth, the activity ledger
  (purchases, refunds, growth) behind them, upgrades at once and the yearly review;
* ``tags``: the brand's tag library, tags on members with their history, system tags set
  by events and the guides' one-tap quick tags.
"""
