"""The dashboard's pages and files: stage prefix, CSP, content types, what is not served."""

import json
import re
from types import SimpleNamespace

import pytest

from chalicelib.http import web


def request(path: str) -> SimpleNamespace:
    return SimpleNamespace(context={"path": path})


@pytest.mark.parametrize(
    ("route", "path", "base"),
    [
        ("/", "/", "/"),  # local
        ("/", "/dev/", "/dev/"),  # API Gateway's own domain: the stage comes first
        ("/", "/dev", "/dev/"),
        ("/api/docs", "/api/docs", "/"),
        ("/api/docs", "/dev/api/docs", "/dev/"),
    ],
)
def test_base_path_keeps_the_stage_prefix(route, path, base):
    assert web.base_path(request(path), route) == base


def test_the_page_carries_its_base_config_and_policy(monkeypatch):
    settings = web.get_settings().updated(
        **{"ws_public_url": "wss://abc.execute-api.eu-west-1.amazonaws.com/dev"}
    )
    monkeypatch.setattr(web, "get_settings", lambda: settings)

    response = web.dashboard(request("/dev/"))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<base href="/dev/">' in response.body
    config = re.search(r'<script type="application/json" id="config">(.*?)</script>', response.body)
    assert json.loads(config.group(1))["wsUrl"] == settings.push.ws_public_url
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self' wss://abc.execute-api.eu-west-1.amazonaws.com" in policy
    assert "unsafe" not in policy and "script-src" not in policy  # scripts: self only


def test_config_cannot_close_its_script_tag(monkeypatch):
    settings = web.get_settings().updated(**{"ws_public_url": "ws://x/</script><b>"})
    monkeypatch.setattr(web, "get_settings", lambda: settings)

    body = web.dashboard(request("/")).body

    assert body.count("</script>") == 2  # the config's and the module's own
    assert "\\u003c/script>" in body


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8")],
)
def test_assets_have_their_content_type(name, content_type):
    response = web.asset(name)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_docs_assets_come_from_the_vendored_swagger_ui():
    assert web.docs_asset("swagger-ui-bundle.js").status_code == 200
    assert web.docs_asset("swagger-ui.css").headers["Content-Type"].startswith("text/css")
    assert "SwaggerUIBundle" in web.docs_asset("docs.js").body


@pytest.mark.parametrize("name", ["index.html", "docs.html", "..", "../web.py", "nope.js"])
def test_only_listed_files_are_served(name):
    assert web.asset(name).status_code == 404
    assert web.docs_asset(name).status_code == 404
