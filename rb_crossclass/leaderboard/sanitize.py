"""Allowlist HTML sanitizer for the few RobustBench card fields that carry markup.

RobustBench footnotes and venues may contain ``<br>``, ``<a href=...>`` and emphasis (e.g.
``"GitHub,<br>Oct 2019"``). :func:`sanitize_html` keeps exactly these and nothing else:

- ``<a>`` with an ``href`` whose scheme is ``http`` or ``https`` (and a host); every other
  attribute is dropped, ``rel="noopener noreferrer"`` is added; an ``<a>`` without a usable
  ``href`` loses its tag (its text stays);
- ``<br>``; ``<em>``, ``<i>``, ``<strong>``, ``<b>`` without attributes.

Every other tag is removed, its text kept and escaped; the content of ``<script>``, ``<style>``
and similar raw-text elements is dropped entirely. Comments, doctypes and processing instructions
vanish. Character references are decoded by the parser and re-escaped on output, so the result
never contains markup that was not produced here. Unclosed allowed tags are closed at the end and
stray end tags are dropped, so the output is balanced.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

INLINE_TAGS = frozenset({"em", "i", "strong", "b"})
ALLOWED_TAGS = INLINE_TAGS | {"a", "br"}
ALLOWED_SCHEMES = frozenset({"http", "https"})
# Elements whose text is code or invisible: drop their content, not just the tags.
DROP_CONTENT_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object",
                               "embed", "svg", "math", "textarea", "title", "xmp", "noembed",
                               "noframes", "plaintext"})
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


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


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []  # allowed tags currently open, innermost last
        self.drop_depth = 0  # > 0 while inside a DROP_CONTENT_TAGS element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_CONTENT_TAGS:
            self.drop_depth += 1
            return
        if self.drop_depth or tag not in ALLOWED_TAGS:
            return
        if tag == "br":
            self.out.append("<br>")
            return
        if tag == "a":
            if "a" in self.open:  # no nested links
                return
            href = safe_href(dict(attrs).get("href"))
            if href is None:
                return
            self.out.append(f'<a href="{html.escape(href, quote=True)}" rel="noopener noreferrer">')
        else:
            self.out.append(f"<{tag}>")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_CONTENT_TAGS:
            return
        if tag == "br" and not self.drop_depth:
            self.out.append("<br>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_CONTENT_TAGS:
            self.drop_depth = max(0, self.drop_depth - 1)
            return
        if self.drop_depth or tag not in self.open:
            return
        while self.open:
            closing = self.open.pop()
            self.out.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.drop_depth:
            self.out.append(html.escape(data, quote=True))

    def close_all(self) -> str:
        self.close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")
        return "".join(self.out)


def sanitize_html(text: str | None) -> str:
    """Markup-safe HTML from ``text``: only links (http/https), ``<br>`` and emphasis survive.

    ``None`` gives ``""``. The result can be inserted into a page unescaped.
    """
    if not text:
        return ""
    parser = _Sanitizer()
    parser.feed(str(text))
    return parser.close_all()


def strip_html(text: str | None) -> str:
    """Plain text of ``text`` (tags removed, ``<br>`` as a space); for Markdown and JSON."""
    if not text:
        return ""
    cleaned = sanitize_html(text).replace("<br>", " ")
    cleaned = re.sub(r"<[^>]*>", "", cleaned)
    return html.unescape(cleaned)
