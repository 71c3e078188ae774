"""Shared by the HTTP benchmarks: gunicorn on loopback and wrk against it."""

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextlib.contextmanager
def gunicorn(
    app: str, *, port: int, probe: Callable[[str], urllib.request.Request]
) -> Iterator[tuple[str, bytes]]:
    """Serve ``app`` (``module:application`` from bench/) with 2 sync workers on 127.0.0.1:port.

    Yields (base URL, body of the first successful ``probe(base)`` request); stops the server
    on exit.
    """
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            app,
            "--pythonpath",
            f"{HERE},{HERE.parent}",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        env={**os.environ, "DJANGO_DEBUG": "false"},
    )
    try:
        for _ in range(100):
            try:
                body = urllib.request.urlopen(probe(base), timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("gunicorn did not start")
        yield base, body
    finally:
        server.terminate()
        server.wait(timeout=10)


def wrk(url: str, lua: str, *, seconds: int, connections: int) -> tuple[float, str]:
    """(requests/s, p99) of wrk -t2 with the given script; any non-2xx response aborts."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"\s99%\s+(\S+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} failed responses:\n{out}")
    return rps, p99
