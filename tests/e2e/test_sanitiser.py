"""The chat's client-side sanitiser (static/src/chat/render.js) in a real browser: the
module is bundled from its source with the project's esbuild, and its DOMPurify layer
is asked directly, as the last line between generated HTML and the page. It drops
data-* attributes (issue 9), which the page's own scripts act on."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"


@pytest.fixture(scope="module")
def render_bundle() -> str:
    if not ESBUILD.exists() or not shutil.which("node"):
        pytest.skip("no node/esbuild (npm ci)")
    entry = 'import * as render from "./static/src/chat/render.js"; window.lhamaRender = render;'
    done = subprocess.run(
        [str(ESBUILD), "--bundle", "--format=iife", "--target=es2020", "--loader=js", "--sourcefile=entry.js"],
        input=entry, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout


@pytest.fixture
def render(browser, render_bundle):
    page = browser.new_page()
    page.set_content("<!doctype html><html><body></body></html>")
    page.add_script_tag(content=render_bundle)
    yield page
    page.close()


def test_the_sanitiser_drops_data_attributes(render):
    hostile = (
        '<p data-action="delete" class="note" title="t">hi</p>'
        '<a href="https://example.com" data-value="up" data-href="javascript:alert(1)">link</a>'
    )
    assert render.evaluate("html => window.lhamaRender.sanitizeHtml(html)", hostile) == (
        '<p class="note" title="t">hi</p>'
        '<a href="https://example.com" rel="noopener noreferrer nofollow" target="_blank">link</a>'
    )


def test_markdown_still_renders_through_it(render):
    html = render.evaluate("md => window.lhamaRender.markdownToSafeHtml(md)", "**bold** and `code` <b data-x=1>raw</b>")
    assert html == "<p><strong>bold</strong> and <code>code</code> &lt;b data-x=1&gt;raw&lt;/b&gt;</p>\n"
