"""Organizer pages keep their formatting and lose everything that could run."""
from __future__ import annotations

from hub_extension.bundles import PageSpec, render_page, sanitize_html


def test_scripts_and_styles_are_removed_with_their_content():
    out = sanitize_html("<p>hi</p><script>alert(1)</script><style>p{display:none}</style>")
    assert out == "<p>hi</p>"


def test_event_handlers_are_removed():
    out = sanitize_html('<img src="https://x.org/a.png" onerror="alert(1)"><p onclick="steal()">t</p>')
    assert "onerror" not in out and "onclick" not in out
    assert '<img src="https://x.org/a.png">' in out


def test_javascript_urls_are_removed():
    out = sanitize_html('<a href="javascript:alert(1)">x</a><a href=" JaVaScRiPt:alert(1)">y</a>')
    assert "javascript" not in out.lower()


def test_iframes_and_forms_are_removed():
    out = sanitize_html('<iframe src="https://evil.example"></iframe><form action="/x"><input></form>ok')
    assert "<iframe" not in out and "<form" not in out and "<input" not in out and "ok" in out


def test_links_get_noopener_and_keep_http_targets():
    out = sanitize_html('<a href="https://codabench.org" rel="opener">site</a>')
    assert 'href="https://codabench.org"' in out and "noopener" in out and '"opener"' not in out


def test_images_allow_http_and_data_image_sources_only():
    assert 'src="data:image/png;base64,AAAA"' in sanitize_html('<img src="data:image/png;base64,AAAA">')
    assert "data:text" not in sanitize_html('<img src="data:text/html;base64,PHNjcmlwdD4=">')
    assert "data:" not in sanitize_html('<a href="data:text/html,<script>alert(1)</script>">x</a>')


def test_tables_and_formatting_are_kept():
    html = ("<h2>Data</h2><table><thead><tr><th>a</th></tr></thead><tbody><tr><td colspan=\"2\">1</td>"
            "</tr></tbody></table><p><b>bold</b> <em>em</em> <code>x</code></p><ul><li>i</li></ul>")
    assert sanitize_html(html) == html


def test_markdown_page_renders_tables_and_is_sanitized():
    page = PageSpec(name="overview", title="Overview", format="markdown",
                    content="# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script>\n"
                            "[x](javascript:alert(1)) <img src=x onerror=alert(1)>\n")
    out = render_page(page)
    assert "<h1>Title</h1>" in out and "<table>" in out and "<td>1</td>" in out
    assert "<script" not in out and "href=\"javascript" not in out and "onerror" not in out


def test_html_page_is_sanitized():
    page = PageSpec(name="terms", title="Terms", content="<p>ok</p><script>x()</script>")
    assert render_page(page) == "<p>ok</p>"
