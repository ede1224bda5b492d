"""One request, one access model: every transaction a request makes decides under the version
in force when it first asked (`ModelSource.one_version`), and asks the store once."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sekisho.ports import ModelSource


class OneVersionPerRequest:
    def __init__(self, app: ASGIApp, models: ModelSource) -> None:
        self.app, self.models = app, models

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Sync routes run in a worker thread that inherits this context, and with it the scope.
        with self.models.one_version():
            await self.app(scope, receive, send)
