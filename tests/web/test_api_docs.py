"""The API's interactive docs (/api/v1/docs) come from sekisho itself: Swagger UI shipped in
the package, the pages' security headers, a CSP that allows only this site, and nothing
loaded from anywhere else."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from playwright.sync_api import Page

from sekisho.web.render import STATIC
from sekisho.web.routing import CSP, HEADERS


def test_the_docs_page_has_the_pages_headers_and_names_no_other_site(
    app_client: Callable[[], TestClient],
) -> None:
    page = app_client().get("/api/v1/docs")
    assert page.status_code == 200
    for name, value in HEADERS.items():
        assert page.headers[name] == value
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page.text)  # no other origin
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    for asset in re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", page.text):
        served = app_client().get(asset)
        assert served.status_code == 200, asset
    assert "Apache License" in (STATIC / "swagger-ui" / "LICENSE").read_text()


def test_the_docs_render_in_a_real_browser_from_this_site_alone(
    open_browser: Callable[..., Page], server: str
) -> None:
    page = open_browser()
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((server, "data:")) else elsewhere.append(r.url),
    )
    answer = page.goto("/api/v1/docs")
    assert answer is not None
    assert answer.headers["content-security-policy"] == CSP
    page.locator(".swagger-ui .info .title").wait_for()
    assert "sekisho" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock-summary-path", has_text="/api/v1/requests").first.wait_for()
    page.locator(".opblock-summary-path", has_text="/api/v1/decisions").first.click()
    refusal = page.locator(".response", has_text="Invalid input: each field").first
    refusal.wait_for()  # the refusals are documented, as problems
    assert "application/problem+json" in refusal.inner_text()
    assert elsewhere == []  # (and the fixture fails on any CSP violation in the console)
