"""Allowlist HTML sanitizer for the few RobustBench card fields that carry markup, on ``nh3``.

RobustBench footnotes and venues may contain ``<br>``, ``<a href=...>`` and emphasis (e.g.
``"GitHub,<br>Oct 2019"``). :func:`sanitize_html` keeps exactly these, through nh3 (Rust's
ammonia: an html5ever parser, linear in the input, fuzzed upstream):

- ``<a>`` with an ``href`` whose scheme is ``http`` or ``https``; every other attribute is
  dropped and ``rel="noopener noreferrer"`` is added; a link whose ``href`` is refused keeps only
  its text;
- ``<br>``; ``<em>``, ``<i>``, ``<strong>``, ``<b>`` without attributes.

Every other tag is removed with its text kept and escaped; the content of ``<script>`` and
``<style>`` is dropped entirely; comments vanish. The result never contains markup that was not
produced by the sanitizer, and it is balanced.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import nh3

INLINE_TAGS = frozenset({"em", "i", "strong", "b"})
ALLOWED_TAGS = INLINE_TAGS | {"a", "br"}
ALLOWED_SCHEMES = frozenset({"http", "https"})
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
# nh3 writes every link it keeps in this one form
_LINK = re.compile(r'<a (?:href="([^"]*)" )?rel="noopener noreferrer">(.*?)</a>', re.S)


def safe_href(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host, else ``None``.

    Control characters and whitespace are removed first (browsers ignore them inside schemes,
    so ``"java\\tscript:"`` must not slip through as a relative URL).
    """
    if not value:
        return None
    cleaned = _CONTROL.sub("", value)
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.netloc:
        return None
    return cleaned


def _absolute_link_or_text(match: re.Match) -> str:
    """Keep a link only when its href is an absolute http(s) URL (nh3 also lets relative and
    protocol-relative URLs through); otherwise keep its text."""
    href = match.group(1)
    if href is not None and safe_href(html.unescape(href)):
        return match.group(0)
    return match.group(2)


def sanitize_html(text: str | None) -> str:
    """Markup-safe HTML from ``text``: only links (http/https), ``<br>`` and emphasis survive.

    ``None`` gives ``""``. The result can be inserted into a page unescaped.
    """
    if not text:
        return ""
    cleaned = nh3.clean(str(text), tags=set(ALLOWED_TAGS), attributes={"a": {"href"}},
                        url_schemes=set(ALLOWED_SCHEMES), link_rel="noopener noreferrer",
                        strip_comments=True)
    return _LINK.sub(_absolute_link_or_text, cleaned)


def strip_html(text: str | None) -> str:
    """Plain text of ``text`` (tags removed, ``<br>`` as a space); for Markdown and JSON."""
    if not text:
        return ""
    cleaned = re.sub(r"<br\s*/?>", " ", sanitize_html(text))
    cleaned = re.sub(r"<[^>]*>", "", cleaned)
    return html.unescape(cleaned)
