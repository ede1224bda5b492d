"""`sekisho serve`: the API, the web UI, the expiry scheduler and the gateway in one process.

This is where the server is put together: the API (`sekisho.api`) knows nothing of the web
UI or the gateway; `create_app` mounts the web UI beside it and tells it where the gateway's
CA comes from, and `build_app` adds the scheduler, the dispatcher and the gateway's start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI

from sekisho import web
from sekisho.api.app import create_api
from sekisho.bootstrap import Core, freeze_startup_heap
from sekisho.gateway.pki import PkiError
from sekisho.gateway.server import Gateway
from sekisho.gateway.setup import published_ca

log = structlog.get_logger(__name__)


class Part(StrEnum):
    API = "api"  # the REST API (and the scheduler, which runs where the API runs)
    GATEWAY = "gateway"


def create_app(core: Core) -> FastAPI:
    """The API with the web UI at / (the API first, so /api/v1 keeps its routes)."""
    app = create_api(core, gateway_ca=lambda: gateway_ca(core))
    web.install(app)
    return app


def gateway_ca(core: Core) -> str | None:
    """The CA every node on this database shares, as `GET /api/v1/gateway` publishes it."""
    try:
        return published_ca(core.settings, core.db)
    except PkiError as exc:  # a CA file nobody can read verifies nothing: publish none
        log.warning("the gateway CA cannot be read", error=str(exc))
        return None


def build_app(core: Core, *, scheduler: bool = True, gateway: Gateway | None = None) -> FastAPI:
    """What `sekisho serve` runs: the app, and beside it the scheduler, the dispatcher and
    the gateway, started and stopped with it."""
    app = create_app(core)
    app.state.gateway = gateway

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = None
        dispatch_task = None
        if gateway is not None:
            await asyncio.to_thread(gateway.start)
        if scheduler:
            sched = core.new_scheduler()
            task = asyncio.create_task(sched.run(), name="sekisho-scheduler")
            app.state.scheduler = sched
            # Notifications: the outbox, delivered beside the scheduler that fills part of it.
            dispatcher = core.new_dispatcher()
            dispatch_task = asyncio.create_task(dispatcher.run(), name="sekisho-dispatcher")
            app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            if dispatch_task is not None:
                app.state.dispatcher.stop()
                dispatch_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatch_task
            if task is not None:
                app.state.scheduler.stop()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if gateway is not None:
                await asyncio.to_thread(gateway.stop)

    app.router.lifespan_context = lifespan
    return app


def serve(core: Core, host: str, port: int, parts: frozenset[Part] = frozenset(Part)) -> None:
    gateway = None
    if Part.GATEWAY in parts:
        from sekisho.gateway.setup import build_gateway

        gateway = build_gateway(core)
    with cluster_events(core):
        if Part.API not in parts:
            assert gateway is not None
            freeze_startup_heap()
            serve_gateway_only(gateway)
            return
        config = uvicorn_config(build_app(core, gateway=gateway), host, port)
        freeze_startup_heap()
        uvicorn.Server(config).run()


def uvicorn_config(app: FastAPI, host: str, port: int, **overrides: Any) -> uvicorn.Config:
    """How uvicorn runs the app (the tests run it so too).

    uvicorn's own proxy handling is off: it believes X-Forwarded-* from 127.0.0.1, so any
    local client could set the audited source. The app trusts only SEKISHO_TRUSTED_PROXIES.
    """
    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        **overrides,
    }
    return uvicorn.Config(app, host=host, port=port, **options)


@contextlib.contextmanager
def cluster_events(core: Core) -> Iterator[None]:
    """On PostgreSQL, share events with the other nodes (a revocation here cuts there)."""
    if not core.db.is_postgres:
        yield
        return
    from sekisho.services.pgbus import PostgresEventBridge

    bridge = PostgresEventBridge(core.db.url, core.bus)
    bridge.start()
    try:
        yield
    finally:
        bridge.stop()


def serve_gateway_only(gateway: Gateway) -> None:
    """Just the gateway, until SIGINT or SIGTERM. Ends of access reach it as events where
    they can travel (PostgreSQL), and from the store on every connection and re-check."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gateway.start()
    try:
        stop.wait()
    finally:
        gateway.stop()
