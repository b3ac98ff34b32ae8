"""The API docs page works offline: Swagger UI's assets are our own static files, not a CDN's."""

from __future__ import annotations

import re

from django.test import Client

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def test_the_docs_page_loads_only_our_own_static_files():
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = ASSET.findall(html)
    scripts = [url for url in assets if url.endswith(".js")]
    assert scripts, "the docs page loads Swagger UI's script"
    for url in assets:
        assert url.startswith("/static/"), f"{url}: not one of our static files"
    for host in ("cdn", "jsdelivr", "unpkg", "http://", "https://"):
        assert host not in html, f"the docs page names {host!r}"

    for url in scripts + [url for url in assets if url.endswith(".css")]:
        asset = client.get(url)
        assert asset.status_code == 200, url
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert len(body) > 1000, url  # the real bundle, not an empty file
    bundle = client.get(next(url for url in scripts if "swagger-ui-bundle" in url))
    assert "javascript" in bundle["Content-Type"]
