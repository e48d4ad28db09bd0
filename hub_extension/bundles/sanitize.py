"""Making organizers' pages safe to show to everyone.

Competition pages (overview, evaluation, data, terms) come from bundles as
HTML or Markdown written by organizers, and are shown to every participant.
They keep their formatting, tables, images and links, but lose anything that
runs: scripts, styles, event-handler attributes, `javascript:` URLs, iframes.
"""
from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

from .model import PageSpec

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong",
    "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "*": {"title", "id", "lang", "dir"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "width", "height"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "td": {"colspan", "rowspan", "align"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "code": {"class"},  # language-xyz from fenced Markdown code
    "span": {"class"},
    "div": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto", "data"}


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # data: URLs are for inline images only; a data: link can carry a page of script.
    if attribute == "href" and value.strip().lower().startswith("data:"):
        return None
    if attribute == "src" and value.strip().lower().startswith("data:") and not value.strip().lower().startswith(
            "data:image/"):
        return None
    return value


def sanitize_html(html: str) -> str:
    """HTML with everything that could run removed; formatting kept."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        attribute_filter=_filter_attribute,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


_markdown = MarkdownIt("commonmark").enable("table")


def render_page(page: PageSpec) -> str:
    """A page as safe HTML (Markdown rendered first)."""
    html = _markdown.render(page.content) if page.format == "markdown" else page.content
    return sanitize_html(html)
