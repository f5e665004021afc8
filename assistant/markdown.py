"""Server-side Markdown for model output (history, shared pages): markdown-it-py, then nh3.

Model output is untrusted. Raw HTML in it is never interpreted: markdown-it renders it
as text (``html=False``), and nh3 then removes anything outside a small Markdown tag set,
so a bug in either layer alone cannot put script on the page. The browser follows the
same policy for streamed answers (static/src/chat.js: marked with raw HTML escaped,
then DOMPurify with the same tag list).
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
        "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody",
        "tr", "th", "td", "span",
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def _image_as_link(self, tokens, idx, options, env) -> str:
    # Images from a model would load third-party URLs: show them as links (as chat.js does).
    token = tokens[idx]
    src = escapeHtml(token.attrGet("src") or "")
    alt = escapeHtml(self.renderInlineAsText(token.children or [], options, env) or token.attrGet("src") or "")
    return f'<a href="{src}">{alt}</a>'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # "commonmark" plus GFM tables and strikethrough; linkify needs an extra package, so off.
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )
    parser.add_render_rule("image", _image_as_link)
    return parser


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_markdown(text: str) -> str:
    """Markdown from a model (or a person) as safe HTML for templates (mark it safe there)."""
    if not text:
        return ""
    return sanitize_html(_parser().render(text))
