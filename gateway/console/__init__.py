"""The operator console: server-rendered pages under ``/console`` (Jinja2 templates, plain CSS
and a little JavaScript in ``static/``, no build step).

``router()`` is mounted by ``gateway.api.app.create_app`` with ``template_config()``; the pages
use the API's key ring, ownership checks and admin functions, so they see and do exactly what
an ``admin`` key of the same workspace may.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import ResponseHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from gateway.console import pages

HERE = Path(__file__).parent

# Defence in depth behind escaping: no inline script or style runs, no framing (clickjacking
# of the retry button), forms post only here, and pages are never cached.
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 over ``templates/``, autoescaping every value."""
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


def router() -> Router:
    """``/console`` and its static files."""
    static = create_static_files_router(path="/static", directories=[HERE / "static"], name="console-static",
                                        include_in_schema=False)
    # "public" for the API's key check (gateway.api.admission): the console's pages check their
    # own session cookie, and its sign-in takes the key in a form, not a bearer header.
    return Router(
        path="/console", route_handlers=[*pages.ROUTES, static], include_in_schema=False,
        exception_handlers={Exception: pages.console_error}, response_headers=SECURITY_HEADERS,
        opt={"public": True},
    )
