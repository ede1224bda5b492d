"""The API's interactive docs: Swagger UI from this package, with the pages' headers."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sekisho.web.routing import harden

DOCS_URL = "/api/v1/docs"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get(DOCS_URL)
def docs(request: Request) -> Response:
    """The document of the API this UI is mounted on (its title, its OpenAPI address)."""
    app = request.app
    page = _PAGE.format(title=escape(app.title), openapi=escape(app.openapi_url or ""))
    return harden(HTMLResponse(page))  # (the CSP allows only this site)
