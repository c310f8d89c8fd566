"""Reading the list pager (``core/_macros.html`` ``pager``) off a rendered page."""

from __future__ import annotations

import html as html_lib
import re

_LINK = r'<a (?:rel="\w+" )?href="([^"]+)" data-testid="pager-{}"'


def link(html: str, which: str) -> str | None:
    """The URL of the pager's ``older`` (next), ``newer`` (previous) or ``first`` link."""
    m = re.search(_LINK.format(which), html)
    return html_lib.unescape(m.group(1)) if m else None


def total(html: str) -> str | None:
    """The pager's total as shown ("共 1,000+ 条")."""
    m = re.search(r'data-testid="pager-total">([^<]*)<', html)
    return m.group(1) if m else None


def walk(client, url: str, *, which: str = "older", limit: int = 1000) -> list[str]:
    """Every page from ``url`` on, following the ``which`` link; the pages' HTML."""
    pages = []
    while url and len(pages) < limit:
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        pages.append(r.get_data(as_text=True))
        url = link(pages[-1], which)
    return pages
