"""The API reference at ``/schema``, served with no request leaving the gateway.

Litestar's default viewers load their scripts, styles, fonts and favicon from public CDNs, so
on a network without internet they render a blank page. Here Swagger UI is served from the
files the ``swagger-ui-py`` package ships (``/schema`` and ``/schema/swagger``), with the
gateway's own favicon; the OpenAPI document stays at ``/schema/openapi.json`` (and ``.yaml``).

Redoc is no longer offered: no maintained PyPI package ships its bundle without pulling in a
whole web framework (Django or Flask) to serve one JavaScript file.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/schema-assets"
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
FAVICON = f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>"


def openapi_config(title: str, version: str) -> OpenAPIConfig:
    """``/schema`` (Swagger UI), ``/schema/swagger``, ``/schema/openapi.json`` and ``.yaml``."""
    swagger = SwaggerRenderPlugin(
        path=["/", "/swagger"],
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=FAVICON,
    )
    return OpenAPIConfig(title=title, version=version, path="/schema",
                         render_plugins=[swagger, JsonRenderPlugin(), YamlRenderPlugin()])


def assets_router() -> Router:
    """Swagger UI's own files, from the installed package."""
    return create_static_files_router(
        path=ASSETS_PATH, directories=[SWAGGER_DIR], name="schema-assets", include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86400, public=True), opt={"public": True},
    )
