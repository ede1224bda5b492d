"""The CLI's side of the API: where the server is, the saved token, and HTTP calls."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sekisho.defaults import DEFAULT_PORT

DEFAULT_SERVER = f"http://127.0.0.1:{DEFAULT_PORT}"
TOKEN_ENV = "SEKISHO_TOKEN"


class ApiError(Exception):
    """The server refused: carries the RFC 9457 problem it sent."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(problem.get("detail") or problem.get("title") or f"HTTP {status}")


class Unreachable(Exception):
    pass


def config_dir() -> Path:
    explicit = os.environ.get("SEKISHO_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sekisho"


@dataclass
class SavedLogin:
    server: str
    user: str
    token: str
    expires_at: str


def credentials_file() -> Path:
    return config_dir() / "credentials.json"


def save_login(login: SavedLogin) -> Path:
    """Write the token readable by its owner only (0600, in a 0700 directory)."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(login.__dict__, out)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def load_login() -> SavedLogin | None:
    path = credentials_file()
    try:
        data = json.loads(path.read_text())
        return SavedLogin(**data)
    except (OSError, ValueError, TypeError):
        return None


def forget_login() -> None:
    credentials_file().unlink(missing_ok=True)


class Client:
    def __init__(self, server: str | None, token: str | None = None, timeout: float = 30) -> None:
        saved = load_login()
        self.server = (server or (saved.server if saved else None) or DEFAULT_SERVER).rstrip("/")
        self.token = token or os.environ.get(TOKEN_ENV) or (saved.token if saved else None)
        self._http = httpx.Client(base_url=f"{self.server}/api/v1", timeout=timeout)

    def call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        headers = {}
        if auth:
            if not self.token:
                raise ApiError(
                    401,
                    {
                        "title": "Not logged in",
                        "detail": "log in first: sekisho login --user NAME",
                        "code": "authentication-failed",
                    },
                )
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(
                f"cannot reach sekisho at {self.server} ({exc.__class__.__name__}): "
                "is `sekisho serve` running? (set --server or SEKISHO_SERVER)"
            ) from exc
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": f"HTTP {response.status_code}", "detail": response.text[:500]}
            raise ApiError(response.status_code, problem)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)
