"""The server under test, run as a child process: `python -m bench.serve --database-url ...`.

What `sekisho serve` runs (sekisho.server.serve: build_app with the expiry scheduler, uvicorn
on 127.0.0.1), on the benchmark's database and data directory, with no login failure delay
unless `--login-failure-delay` gives one (the sign-in flood runs with sekisho's default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.backends import settings_for
from sekisho import logs
from sekisho.bootstrap import build_core
from sekisho.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--login-failure-delay", type=float, default=0.0)
    args = parser.parse_args()
    logs.configure(json=True)
    core = build_core(settings_for(args.database_url, args.data_dir, args.login_failure_delay))
    core.models.current()  # refuse to start without a model, as `sekisho serve` does
    serve(core, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
