"""Data Docs that load nothing from outside.

GX renders its Data Docs pages with scripts, style sheets and fonts from public CDNs (jQuery, Bootstrap,
Vega, Font Awesome) and a logo image whose URL carries the data context's id and a timestamp: opening a page
would tell third parties that, and when.  After every validation run :func:`make_offline` rewrites the site's
HTML and CSS so that nothing is fetched from another host: external ``<script src>``, ``<link href>``,
``<img src>`` and CSS ``url(...)``/``@import`` are removed, and each page gets a Content-Security-Policy that
lets it load only its own files.  Pages keep their content (every expectation, observed value and result
table is server-rendered HTML) and GX's own local style sheet; the CDN's styling and the Vega charts are lost.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_EXT = r"""\s*["']?\s*(?:https?:)?//"""
"""An attribute or url() value that starts with http://, https:// or // (another host)."""
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"<script\b[^>]*\bsrc\s*={_EXT}[^>]*>.*?</script\s*>", re.I | re.S), ""),
    (re.compile(rf"<(?:link|img|iframe|embed|source|audio|video)\b[^>]*\b(?:href|src)\s*={_EXT}[^>]*>", re.I | re.S),
     ""),
    (re.compile(rf"@import\s+(?:url\()?{_EXT}[^;]*;", re.I), ""),
    (re.compile(rf"url\({_EXT}[^)]*\)", re.I), "none"),
)
CSP = ("default-src 'self' file: data: 'unsafe-inline'; connect-src 'none'; form-action 'none'; "
       "base-uri 'none'; object-src 'none'")
_CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
_HEAD = re.compile(r"<head\b[^>]*>", re.I)


def offline(text: str, html: bool = True) -> str:
    """``text`` (an HTML page, or a style sheet with ``html=False``) with every load from another host removed;
    a page also gets the Content-Security-Policy above as the first element of its head."""
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    if html and _CSP_META not in text:
        head = _HEAD.search(text)
        text = (text[:head.end()] + _CSP_META + text[head.end():]) if head else _CSP_META + text
    return text


def make_offline(site: Path) -> int:
    """Rewrite every page and style sheet under ``site`` in place (atomically); the number of files changed."""
    changed = 0
    for path in sorted([*site.rglob("*.html"), *site.rglob("*.css")]):
        old = path.read_text(encoding="utf-8", errors="surrogateescape")
        new = offline(old, html=path.suffix == ".html")
        if new != old:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(new, encoding="utf-8", errors="surrogateescape")
            os.replace(tmp, path)
            changed += 1
    return changed
