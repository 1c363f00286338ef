"""``/docs`` works without internet: the page references only the gateway's own assets."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx

from gateway.apidocs import SWAGGER_DIR


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [value for name, value in attrs if name in ("src", "href") and value]


async def test_docs_page_loads_only_local_assets(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        parser = _Refs()
        parser.feed(page.text)
        assert parser.refs, "the docs page references no assets at all"
        external = [ref for ref in parser.refs if not ref.startswith("/") or ref.startswith("//")]
        assert not external, f"/docs loads from outside the venue: {external}"
        assert "cdn" not in page.text.lower()
        for ref in parser.refs:
            asset = await http.get(ref)
            assert asset.status_code == 200, ref
            assert asset.content == (SWAGGER_DIR / ref.rsplit("/", 1)[1]).read_bytes()
        assert (await http.get("/openapi.json")).status_code == 200


async def test_docs_assets_are_a_fixed_list(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for path in ("/docs/assets/README.md", "/docs/assets/..%2Fconsole.js", "/docs/assets/LICENSE"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_redoc_is_not_served_because_it_needs_a_cdn(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/redoc")).status_code == 404
