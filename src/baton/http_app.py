"""The streamable HTTP transport: `baton serve --transport http`.

MCP at `/mcp` (stateless, JSON responses: a call in flight finishes during a graceful shutdown,
where an SSE response would be cut), `GET /healthz` without a credential, API keys as
`Authorization: Bearer <key>` (keys.py). No OAuth metadata is advertised (`resource_server_url=None`):
clients that see it prefer OAuth over a configured static header.

Safety, in the order a request meets it:
- the connection must send a complete request head within `head_timeout_s` (HeadDeadlineH11), and
  an idle keep-alive connection is closed after `keep_alive_s`; at most `concurrency` connections
  per worker (uvicorn answers 503 beyond);
- the body is read within `body_timeout_s` (else 408) and is at most `max_body_bytes` (else 413),
  counted as it streams, whatever Content-Length says (BodyLimit);
- no key, or an unknown, revoked or expired one: 401 (looked up in the database on every request,
  so a revocation is seen at once by every process); a bad `Host` header: 421; a browser `Origin`
  that is not allowed: 403 (the SDK's transport security, always configured explicitly: it
  protects only loopback hosts by default);
- a call beyond the key's scope: the tool error `forbidden: ...` (server.py).

Several workers (`--workers N`) are separate processes that uvicorn imports `create_app` in; the
settings travel in the BATON_HTTP_SETTINGS environment variable (they never hold a key: keys live,
hashed, in the database). The parent migrates the schema once before any worker starts; each
worker's MCPServer lifespan opens its own store.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from baton import keys
from baton.errors import BatonError, InvalidInput
from baton.store import Store, fetch_one

log = logging.getLogger(__name__)

ENV_VAR = "BATON_HTTP_SETTINGS"
FACTORY = "baton.http_app:create_app"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class HttpSettings:
    db_path: str
    tools: str = "core"
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 1
    auth: bool = True
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "WARNING"
    max_body_bytes: int = 8 * 1024 * 1024
    body_timeout_s: float = 30.0
    head_timeout_s: float = 10.0
    keep_alive_s: int = 5
    graceful_shutdown_s: int = 30
    concurrency: int = 256

    def check(self) -> None:
        """Refuse an unsafe or impossible configuration before anything is opened or bound."""
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"--port {self.port}: expected 0..65535")
        if not 1 <= self.workers <= 64:
            raise InvalidInput(f"--workers {self.workers}: expected 1..64")
        if not is_loopback(self.host):
            if not self.auth:
                raise InvalidInput(f"--no-auth is refused on {self.host}: without keys, bind a loopback host "
                                   "(127.0.0.1, localhost or ::1)")
            if not self.allowed_hosts:
                raise InvalidInput(f"binding {self.host} needs --allowed-host NAME (repeatable): the host names "
                                   "clients use to reach this server; other Host headers are refused (DNS rebinding)")
        for origin in self.allowed_origins:
            if not origin.startswith(("http://", "https://")) or origin.rstrip("/") != origin:
                raise InvalidInput(f"--allowed-origin {origin!r}: expected scheme://host[:port], e.g. "
                                   "https://dash.example.com")

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> HttpSettings:
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise RuntimeError(f"{ENV_VAR} is not set: start workers with `baton serve --transport http --workers N`")
        values = json.loads(raw)
        values["allowed_hosts"] = tuple(values.get("allowed_hosts", ()))
        values["allowed_origins"] = tuple(values.get("allowed_origins", ()))
        return cls(**values)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(settings: HttpSettings) -> TransportSecuritySettings:
    """Host and Origin checks, explicit on every host (the SDK enables them only for loopback hosts)."""
    hosts = [*LOOPBACK_HOSTS, *(f"{h}:*" for h in LOOPBACK_HOSTS)]
    for name in settings.allowed_hosts:
        has_port = name.rsplit(":", 1)[-1].isdigit() and not name.endswith("]")
        hosts += [name] if has_port else [name, f"{name}:*"]
    origins = [f"http://{h}{port}" for h in LOOPBACK_HOSTS for port in ("", ":*")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=[*origins, *settings.allowed_origins])


class _LiveStore:
    """The store the MCPServer lifespan opened, for what runs outside a tool call."""

    store: Store | None = None

    def set(self, store: Store) -> None:
        self.store = store

    def get(self) -> Store:
        if self.store is None:
            raise RuntimeError("the HTTP app's store is used before its lifespan opened it")
        return self.store


class ApiKeyVerifier:
    """Bearer token -> the key's agent and scopes, read from the database on every request."""

    def __init__(self, live: _LiveStore) -> None:
        self._live = live

    async def verify_token(self, token: str) -> AccessToken | None:
        key = await keys.verify(self._live.get(), token)
        if key is None:
            return None
        # `token` holds the public key id: the secret is not kept past this check (server.py reads it back).
        return AccessToken(token=key.key_id, client_id=key.agent_id, subject=key.key_id, scopes=sorted(key.scopes))


class BodyLimit:
    """Read the whole request body within a deadline and a size bound, then hand it on."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = PlainTextResponse(f"Request body larger than {self.max_bytes} bytes", status_code=413,
                                    headers={"connection": "close"})
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await too_big(scope, receive, send)
            return
        body = bytearray()
        ended: Message | None = None
        with anyio.move_on_after(self.timeout_s) as deadline:
            while len(body) <= self.max_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    ended = message  # the client went away: let the app see it
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        if deadline.cancelled_caught:
            await PlainTextResponse(f"Request body not received within {self.timeout_s:g} s", status_code=408,
                                    headers={"connection": "close"})(scope, receive, send)
            return
        if len(body) > self.max_bytes:
            await too_big(scope, receive, send)
            return
        replay: list[Message] = [ended if ended is not None else {"type": "http.request", "body": bytes(body),
                                                                  "more_body": False}]

        async def buffered() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, buffered, send)


class HeadDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for the request head.

    uvicorn closes an idle keep-alive connection, but any byte received cancels that timer, so a
    client trickling a header a byte at a time (or connecting and sending nothing) would hold its
    connection, and one of `limit_concurrency` slots, for ever. Here a connection must complete each
    request head within `head_timeout_s` of opening or of its previous response.
    """

    head_timeout_s = HttpSettings.head_timeout_s
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_deadline_passed)

    def _head_deadline_passed(self) -> None:
        waiting_for_head = self.cycle is None or self.cycle.response_complete
        if waiting_for_head and not self.transport.is_closing():
            self.transport.close()


def _protocol(head_timeout_s: float) -> type[H11Protocol]:
    if head_timeout_s == HeadDeadlineH11.head_timeout_s:
        return HeadDeadlineH11  # importable by name: uvicorn pickles it into each worker
    return type("HeadDeadlineH11", (HeadDeadlineH11,), {"head_timeout_s": head_timeout_s})


def build_app(settings: HttpSettings, store: Store | None = None) -> ASGIApp:
    """The whole ASGI app. Pass an open `store` to share one (tests); otherwise each worker opens its own."""
    from baton.server import build_server
    from baton.tools import select

    live = _LiveStore()
    auth: dict[str, Any] = {}
    if settings.auth:
        # issuer_url is a required field; with resource_server_url=None it is never advertised.
        auth = {"token_verifier": ApiKeyVerifier(live),
                "auth": AuthSettings(issuer_url=AnyHttpUrl("http://127.0.0.1"), resource_server_url=None)}
    server = build_server(Path(settings.db_path), select(settings.tools), store, on_open=live.set, **auth)

    async def healthz(_: Request) -> Response:
        # No path, URL or key here: the endpoint answers anyone who can reach the port.
        opened = live.get()
        try:
            async with opened.read() as conn:
                await fetch_one(conn, "SELECT 1")
        except BatonError as exc:
            log.warning("health check failed: %s", exc)
            status, code = "unavailable", 503
        else:
            status, code = "ok", 200
        return JSONResponse({"status": status, "schema_version": opened.schema_version, "backend": "sqlite"},
                            status_code=code)

    server.custom_route("/healthz", methods=["GET"])(healthz)
    app = server.streamable_http_app(
        stateless_http=True, json_response=True, transport_security=transport_security(settings),
        max_request_body_size=settings.max_body_bytes, host=settings.host)
    return BodyLimit(app, settings.max_body_bytes, settings.body_timeout_s)


def create_app() -> ASGIApp:
    """The app factory each uvicorn worker process imports (`--workers N`)."""
    from baton.cli import configure_logging

    settings = HttpSettings.from_env()
    configure_logging(settings.log_level)
    _stop_when_orphaned()
    return build_app(settings)


def _stop_when_orphaned(interval_s: float = 1.0) -> None:
    """SIGTERM this worker once its parent is gone: a `kill -9` of `baton serve --workers N` left its
    workers listening and answering on the port with nobody to stop them (systemd and containers kill
    the whole group, a shell does not). A thread, because the check must run even while the event
    loop is busy, and `getppid()` is the portable way to see the parent go."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        log.warning("the parent `baton serve` process is gone; this worker stops")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="baton-parent-watch", daemon=True).start()


def uvicorn_options(settings: HttpSettings) -> dict[str, Any]:
    """The uvicorn settings of the transport (also used by the tests' in-process servers)."""
    return {
        "host": settings.host.strip("[]"),
        "port": settings.port,
        "log_config": None,  # our stderr handler; uvicorn's own config would send access lines to stdout
        "log_level": settings.log_level.lower(),
        "access_log": settings.log_level in ("DEBUG", "INFO"),
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": settings.graceful_shutdown_s,
        "limit_concurrency": settings.concurrency,
        "http": _protocol(settings.head_timeout_s),
        "lifespan": "on",
        "server_header": False,
    }


async def _prepare(settings: HttpSettings) -> None:
    async with await Store.open(Path(settings.db_path)) as store:
        if settings.auth and await keys.count_active(store) == 0:
            log.warning("no active API key: every request will get 401; create one with "
                        "`baton keys create --agent-id ID`")


def run(settings: HttpSettings) -> None:
    """Serve until SIGTERM/SIGINT, then finish the calls in flight (up to graceful_shutdown_s)."""
    settings.check()
    # Migrate (and fail loudly) once, before any worker starts.
    anyio.run(_prepare, settings)
    if settings.workers == 1:
        app = build_app(settings)
        # After a graceful shutdown uvicorn re-raises the signal that stopped it, with the handler it found:
        # SIGTERM's default would then kill the process (status -15) after a clean stop. As for SIGINT, the
        # KeyboardInterrupt is caught by uvicorn.run, and the server exits 0 (as with --workers N).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        uvicorn.run(app, **uvicorn_options(settings))
        return
    os.environ[ENV_VAR] = settings.to_env()
    uvicorn.run(FACTORY, factory=True, workers=settings.workers, **uvicorn_options(settings))
