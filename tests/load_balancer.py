"""A real load balancer for tests: Debian's nginx with its own configuration, on a free loopback port.

`make services` installs nginx if it is missing (scripts/install-nginx.sh). Each test starts its
own nginx in the foreground (`daemon off`) from a temporary folder: configuration, pid, logs and
temporary files all live there, so nothing touches /etc/nginx or a system-wide instance.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests.servers import free_port, stop

START_TIMEOUT_S = 15
UPSTREAM_HEADER = "X-Upstream"  # which replica answered, added by nginx to every answer

# Failover: a request that could not be delivered (connection refused: a dead replica) or got the
# batcher's 503 (an overloaded one) is passed to the other replica. POST /predict and
# /predict_batch are also passed on when a replica fails mid-request (`non_idempotent`): scoring
# has no side effect a client could see twice, and a replica that died after scoring may replay
# a row for a request nobody was answered, never lose one. Other POSTs (admin, feedback) are
# passed on only when they never reached a replica, nginx's default.
# `max_fails=0`: no replica is ever marked down. With passive health checks one 503 of an
# overloaded replica took it out for `fail_timeout`, and both out answered every request with 502
# ("no live upstreams"); a dead replica costs a refused connection on loopback, then the retry.
CONFIG = """
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;

    upstream tabserve {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_connect_timeout 2s;
        proxy_read_timeout 60s;
        proxy_next_upstream_tries 2;
        # In memory only: the worker runs as `nobody` (under root) and cannot write in the test's
        # private temporary folder. Bodies up to 1 MB are buffered, so a failed try can be resent.
        client_body_buffer_size 1m;
        client_max_body_size 1m;
        proxy_max_temp_file_size 0;
        add_header {header} $upstream_addr always;

        location ~ ^/predict(_batch)?$ {{
            proxy_pass http://tabserve;
            proxy_next_upstream error timeout http_503 non_idempotent;
        }}
        location / {{
            proxy_pass http://tabserve;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if not found:
        raise RuntimeError("nginx is not installed: run `make services` (scripts/install-nginx.sh)")
    return found


def nginx_config(folder: Path, port: int, upstreams: Sequence[str]) -> str:
    servers = "\n".join(f"        server {address} max_fails=0;" for address in upstreams)
    return CONFIG.format(folder=folder, port=port, servers=servers, header=UPSTREAM_HEADER)


@contextlib.contextmanager
def nginx(folder: Path, upstreams: Sequence[str]) -> Iterator[str]:
    """nginx proxying to `host:port` upstreams; yields its base URL; stopped (SIGTERM) at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(nginx_config(folder, port, upstreams))
    binary = nginx_binary()
    subprocess.run(
        [binary, "-t", "-q", "-p", str(folder), "-c", str(config)], check=True, capture_output=True
    )
    log = folder / "nginx.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_listening(url, process, folder)
        yield url
    finally:
        stop(process, timeout=10)  # SIGTERM: nginx's fast shutdown; its worker exits with it


def _wait_listening(url: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"nginx exited with {process.returncode}: {(folder / 'error.log').read_text()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{url}/livez", timeout=2)  # any answer, even a 502, means nginx listens
            return
        time.sleep(0.1)
    raise RuntimeError(f"nginx did not listen on {url} within {START_TIMEOUT_S}s")
