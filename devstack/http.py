"""Chalice's own local server for the REST routes, plus the local web page.

The REST API runs through ``chalice local``'s machinery (``LocalGateway``: route matching, CORS
preflights, the Lambda proxy event), embedded in-process instead of launched as a CLI, so the HTTP
routes behave as ``chalice local`` serves them and the app is the unchanged ``app.py``.

The page is not an app route (the deployed API must not serve it), so it is served by a subclass of
Chalice's request handler that answers a few paths before handing everything else to Chalice:

* ``GET /`` — ``devstack/web/index.html`` (a placeholder page while that file does not exist);
* ``GET /web/<file>`` — static files from ``devstack/web/`` (no directory escapes);
* ``GET /client/<file>`` — the typed client package's build (``clients/js/dist``, made by
  ``make client``), which the page imports as ES modules;
* ``GET /devstack/config.json`` — ``{"httpUrl", "wsUrl", "token", "anthropic", "wsLimits"}`` for
  the page (``anthropic`` is ``"emulator"`` or ``"api"``, so the page can label emulated replies).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, LocalDevServer

log = logging.getLogger("devstack.http")

WEB_DIR = Path(__file__).resolve().parent / "web"
CLIENT_DIR = Path(__file__).resolve().parent.parent / "clients" / "js" / "dist"
CONFIG_PATH = "/devstack/config.json"

PLACEHOLDER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Local stack</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>The local stack is running</h1>
<p>The web page (<code>devstack/web/index.html</code>) is not there yet.</p>
<p>HTTP API: <code>{http_url}</code><br>WebSocket: <code>{ws_url}</code></p>
<p>Endpoints and a dev token: <a href="/devstack/config.json">/devstack/config.json</a></p>
</body></html>
"""


class DevRequestHandler(ChaliceRequestHandler):
    """Chalice's local request handler, with the page's paths answered first.

    ``web_dir`` and ``page_config`` are bound by ``make_handler`` (one subclass per server).
    """

    web_dir: Path = WEB_DIR
    client_dir: Path = CLIENT_DIR
    page_config: Mapping[str, Any] = {}

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if not self._serve_page(head=False):
            self._generic_handle()

    def do_HEAD(self) -> None:
        if not self._serve_page(head=True):
            self._generic_handle()

    def _serve_page(self, *, head: bool) -> bool:
        """Answer a page path; False hands the request to Chalice."""
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            index = self.web_dir / "index.html"
            if index.is_file():
                self._file(index, head)
            else:
                page = PLACEHOLDER_PAGE.format(
                    http_url=self.page_config.get("httpUrl", ""),
                    ws_url=self.page_config.get("wsUrl", ""),
                )
                self._bytes(200, page.encode(), "text/html; charset=utf-8", head)
            return True
        if path == CONFIG_PATH:
            body = json.dumps(dict(self.page_config)).encode()
            self._bytes(200, body, "application/json", head)
            return True
        for prefix, root in (("/web/", self.web_dir), ("/client/", self.client_dir)):
            if path.startswith(prefix):
                target = self._static(root, path[len(prefix) :])
                if target is None:
                    message = b"not found\n"
                    if prefix == "/client/" and not root.is_dir():
                        message = b"the client package is not built: run `make client`\n"
                    self._bytes(404, message, "text/plain; charset=utf-8", head)
                else:
                    self._file(target, head)
                return True
        return False

    def _static(self, directory: Path, relative: str) -> Path | None:
        root = directory.resolve()
        try:
            target = (root / relative).resolve()
        except (OSError, ValueError):
            return None
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return target

    def _file(self, path: Path, head: bool) -> None:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in (
            "application/javascript",
            "application/json",
        ):
            content_type += "; charset=utf-8"
        self._bytes(200, path.read_bytes(), content_type, head)

    def _bytes(self, status: int, body: bytes, content_type: str, head: bool) -> None:
        # The request body (if any) must be drained so the keep-alive connection stays usable.
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # The page changes while it is being developed: never serve it stale.
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)


def make_handler(
    page_config: Mapping[str, Any], web_dir: Path = WEB_DIR, client_dir: Path = CLIENT_DIR
) -> type[DevRequestHandler]:
    """A handler class bound to this stack's page configuration."""
    attributes = {"page_config": dict(page_config), "web_dir": web_dir, "client_dir": client_dir}
    return type("BoundDevRequestHandler", (DevRequestHandler,), attributes)


def local_app(app: Chalice) -> Chalice:
    """What ``chalice.local.create_local_server`` does to the app: a thread-local
    ``current_request``, needed because the server handles requests in parallel threads."""
    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return app


class HttpServer:
    """The embedded Chalice local server, serving in a background thread.

    Binds on construction (so ``port`` is known when 0 was asked for); ``set_page_config`` then
    tells the page where everything is.
    """

    def __init__(
        self, app: Chalice, config: Config, host: str, port: int, web_dir: Path = WEB_DIR
    ) -> None:
        local_app(app)
        self.handler_cls = make_handler({}, web_dir)
        self.server = LocalDevServer(app, config, host, port, handler_cls=self.handler_cls)
        self.host = host
        self.port: int = self.server.server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_page_config(self, page_config: Mapping[str, Any]) -> None:
        self.handler_cls.page_config = dict(page_config)

    def start(self) -> HttpServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.server.server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name="chalice-local",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server.server_close()
