"""Server-side Markdown for model output (history and shared pages): markdown-it-py, then nh3."""

from __future__ import annotations

import pytest

from assistant.markdown import render_markdown, sanitize_html


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("**bold** and *it*", "<p><strong>bold</strong> and <em>it</em></p>\n"),
        ("<img src=x onerror=alert(1)>", "<p>&lt;img src=x onerror=alert(1)&gt;</p>\n"),
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>\n"),
        ("[site](https://e.example)", '<p><a href="https://e.example" rel="noopener noreferrer nofollow">site</a></p>\n'),
        (
            "![a cat](https://img.example/c.png)",
            '<p><a href="https://img.example/c.png" rel="noopener noreferrer nofollow">a cat</a></p>\n',
        ),
        ("```python\nx = '<b>'\n```", '<pre><code class="language-python">x = \'&lt;b&gt;\'\n</code></pre>\n'),
        ("~~gone~~", "<p><s>gone</s></p>\n"),
        ("| a |\n|---|\n| 1 |", "<table>\n<thead>\n<tr>\n<th>a</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>1</td>\n</tr>\n</tbody>\n</table>\n"),
        ("", ""),
    ],
)
def test_render_markdown(text, html):
    assert render_markdown(text) == html


def test_sanitizer_is_a_second_layer_on_its_own():
    hostile = '<p onclick="x()">hi<script>bad()</script><iframe src="https://e.example"></iframe>' \
              '<a href="javascript:alert(1)">j</a><code class="language-js">c</code><style>*{}</style></p>'
    assert sanitize_html(hostile) == '<p>hi<a rel="noopener noreferrer nofollow">j</a><code class="language-js">c</code></p>'
