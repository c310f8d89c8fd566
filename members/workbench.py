"""The guide workbench's home (导购工作台): tiles that link to every section and panels at the
top, registered by whichever package owns the section, like the member center's slots.

Members registers its own sections (my customers, my QR code); higher packages (guide
distribution: materials, tasks, orders, performance, shop, commission) register theirs
without members importing them::

    register_workbench_tile("guide_workbench.materials", _l("Materials"), icon="image", order=20)
    register_workbench_panel(render_month_header, order=10)

A tile's ``roles`` say who sees it; ``icon`` names its picture (one of ``ICONS``, each with
its colour). A panel is ``render(staff) -> Markup | None``: the owning package renders its
own template, so members never includes a higher package's template. A customer view
(``register_customer_view``) is a tab above the workbench's customer list ("all my
customers", "bound to me").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from markupsafe import Markup

ALL_ROLES = ("guide", "store_manager", "brand_admin")
ICONS = ("users", "link", "task", "image", "order", "chart", "trophy", "qr", "wallet", "shop")


@dataclasses.dataclass(frozen=True)
class Tile:
    endpoint: str
    label: object
    icon: str
    order: int
    roles: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Panel:
    key: str
    render: Callable[[object], Markup | str | None]
    order: int


@dataclasses.dataclass(frozen=True)
class CustomerView:
    endpoint: str
    label: object
    order: int
    roles: tuple[str, ...]


_TILES: dict[str, Tile] = {}
_PANELS: dict[str, Panel] = {}
_VIEWS: dict[str, CustomerView] = {}


def register_workbench_tile(
    endpoint: str,
    label,
    icon: str = "users",
    order: int = 50,
    roles: tuple[str, ...] = ALL_ROLES,
) -> None:
    """Show a tile linking to ``endpoint`` (no URL arguments) on the workbench home."""
    if icon not in ICONS:
        raise ValueError(f"icon must be one of {ICONS}")
    _TILES[endpoint] = Tile(endpoint, label, icon, order, tuple(roles))


def register_workbench_panel(
    key: str, render: Callable[[object], Markup | str | None], order: int = 50
) -> None:
    """Render ``render(staff)`` (safe HTML, or None for nothing) at the top of the home."""
    _PANELS[key] = Panel(key, render, order)


def register_customer_view(
    endpoint: str, label, order: int = 50, roles: tuple[str, ...] = ALL_ROLES
) -> None:
    """A tab above the workbench's customer list linking to another view of the customers."""
    _VIEWS[endpoint] = CustomerView(endpoint, label, order, tuple(roles))


def tiles_for(role: str) -> list[Tile]:
    return sorted(
        (t for t in _TILES.values() if role in t.roles), key=lambda t: (t.order, t.endpoint)
    )


def panels_for(staff) -> list[Markup]:
    out = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.key)):
        html = panel.render(staff)
        if html:
            out.append(Markup(html))  # noqa: S704 - the owning package rendered a template
    return out


def customer_views_for(role: str) -> list[CustomerView]:
    return sorted(
        (v for v in _VIEWS.values() if role in v.roles), key=lambda v: (v.order, v.endpoint)
    )
