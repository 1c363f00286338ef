"""``/docs``: Swagger UI served from the package's own copy of ``swagger-ui-dist`` (no CDN).

FastAPI's default ``/docs`` page loads Swagger UI from a public CDN, so an operator's browser
without internet access got a blank page. The assets are vendored under ``static/swagger`` (see
its README for version and licence) and served from a fixed list: no path from the request ever
reaches the filesystem.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse

from gateway.errors import ApiError

SWAGGER_DIR = Path(__file__).resolve().parent / "static" / "swagger"
ASSET_PREFIX = "/docs/assets/"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_page() -> Response:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="OMN venue gateway - API docs",
        swagger_js_url=ASSET_PREFIX + "swagger-ui-bundle.js",
        swagger_css_url=ASSET_PREFIX + "swagger-ui.css",
        swagger_favicon_url=ASSET_PREFIX + "favicon-32x32.png",
    )


@router.get(ASSET_PREFIX + "{asset}")
async def swagger_asset(asset: str) -> Response:
    media_type = _ASSETS.get(asset)
    if media_type is None:
        raise ApiError("NOT_FOUND", f"no docs asset {asset!r}")
    return FileResponse(SWAGGER_DIR / asset, media_type=media_type, headers={"Cache-Control": "max-age=86400"})
