"""`sekisho serve`: the API and the expiry scheduler in one process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from sekisho.api.app import create_app
from sekisho.services.core import Core
from sekisho.services.scheduler import Scheduler


def build_app(core: Core, *, scheduler: bool = True) -> FastAPI:
    app = create_app(core)
    if not scheduler:
        return app

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sched = Scheduler(core)
        task = asyncio.create_task(sched.run(), name="sekisho-scheduler")
        app.state.scheduler = sched
        try:
            yield
        finally:
            sched.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.router.lifespan_context = lifespan
    return app


def serve(core: Core, host: str, port: int) -> None:
    config = uvicorn.Config(
        build_app(core),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run()
