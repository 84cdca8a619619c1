"""The dashboard and the API docs: one HTML page each, and their static files, from the package.

The files live in ``chalicelib/http/static/`` so ``chalice package`` ships them. Only files that
exist there are served (a fixed list read at import), with their content type and
``nosniff``. The pages carry a Content-Security-Policy that allows this origin only, plus
the WebSocket API's origin, which is another host on AWS. Links in the pages go through a
``<base href>`` that holds the stage prefix (``/dev/`` on the AWS REST stage, ``/`` locally).
"""

import html
import json
from functools import lru_cache
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from chalice import Response

from chalicelib import tokens
from chalicelib.config import get_settings
from chalicelib.dex import VENUES

STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_DIR = STATIC_DIR / "vendor" / "swagger-ui"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES}


# The page templates are rendered, never served as they are.
ASSETS = {name: p for name, p in _files(STATIC_DIR).items() if p.suffix != ".html"}
DOCS_ASSETS = {**_files(SWAGGER_DIR), "docs.js": STATIC_DIR / "docs.js"}


def content_security_policy(ws_url: str) -> str:
    ws = urlsplit(ws_url)
    connect = "'self'" + (f" {ws.scheme}://{ws.netloc}" if ws.scheme in ("ws", "wss") else "")
    return "; ".join(
        [
            "default-src 'self'",
            f"connect-src {connect}",
            "img-src 'self' data:",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def base_path(request, route: str) -> str:
    """The page's base URL path: the part of the requested path before the route, i.e. the
    stage (``/dev/``) on API Gateway's own domain, nothing locally; always ending in ``/``."""
    path = (request.context or {}).get("path") or route
    prefix = path.rstrip("/") if route == "/" else path.removesuffix(route)
    return prefix.rstrip("/") + "/"


@lru_cache
def _template(name: str) -> Template:
    return Template((STATIC_DIR / name).read_text())


def _page(request, route: str, template: str, config: dict) -> Response:
    ws_url = get_settings().push.ws_public_url
    # JSON inside <script type="application/json">: "<" escaped so it cannot close the tag.
    config_json = json.dumps({"wsUrl": ws_url, **config}).replace("<", "\\u003c")
    body = _template(template).substitute(
        base=html.escape(base_path(request, route)), config=config_json
    )
    headers = {
        "Content-Type": CONTENT_TYPES[".html"],
        "Content-Security-Policy": content_security_policy(ws_url),
        "Cache-Control": "no-cache",
        **SECURITY_HEADERS,
    }
    return Response(body=body, status_code=200, headers=headers)


def dashboard(request) -> Response:
    # The tokens the market lists later are sniper orders' to buy, against their pool's quote.
    listed = [{"symbol": t.symbol, "quote": t.quote} for t in get_settings().market.listings]
    symbols = [t.symbol for t in tokens.TOKENS] + [t["symbol"] for t in listed]
    config = {"tokens": symbols, "listed": listed, "venues": list(VENUES)}
    return _page(request, "/", "index.html", config)


def docs(request) -> Response:
    return _page(request, "/api/docs", "docs.html", {"openapi": "api/openapi.json"})


def _file(files: dict[str, Path], name: str) -> Response:
    path = files.get(name)
    if path is None:
        body = {"error": {"code": "not_found", "message": "no such file", "details": None}}
        return Response(body=body, status_code=404)
    headers = {
        "Content-Type": CONTENT_TYPES[path.suffix],
        "Cache-Control": "public, max-age=300",
        **SECURITY_HEADERS,
    }
    return Response(body=path.read_text(), status_code=200, headers=headers)


def asset(name: str) -> Response:
    return _file(ASSETS, name)


def docs_asset(name: str) -> Response:
    return _file(DOCS_ASSETS, name)
