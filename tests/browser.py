"""The Evidently UI on a workspace, and a page of it as Debian's headless chromium renders it.

The dashboard is a React application: its panels exist only after the browser has run its
JavaScript and fetched the runs' data, so the page is read as the DOM chromium dumps after a
virtual-time budget, not as the server's HTML (scripts/install-chromium.sh installs chromium).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port, stop, wait_ready

EVIDENTLY = str(Path(sys.executable).with_name("evidently"))
UI_READY_TIMEOUT_S = 180  # ~20 s on a loaded machine
RENDER_BUDGET_MS = 15_000  # virtual time for the app to fetch and draw every panel
PANEL_TITLE = re.compile(r"<h5[^>]*>([^<]+)</h5>")
LINE = re.compile(r'<path [^>]*d="M[^"]*L[^"]*"[^>]*class="MuiLineElement-root')  # two points or more
COUNTER = re.compile(r"<h2[^>]*>([^<]+)</h2>")


@contextlib.contextmanager
def evidently_ui(workspace: str, logs: Path) -> Iterator[str]:
    port = free_port()
    log = logs / f"evidently-ui-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [EVIDENTLY, "ui", "--workspace", workspace, "--port", str(port), "--host", "127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, path="/api/projects", timeout_s=UI_READY_TIMEOUT_S)
        yield url
    finally:
        stop(process)


def rendered_dom(url: str) -> str:
    """The page's DOM once chromium (headless, no network beyond loopback) has rendered it."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run scripts/install-chromium.sh"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # runs as root here
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={RENDER_BUDGET_MS}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@dataclass(frozen=True)
class Panel:
    title: str
    lines: int  # line series drawn with at least two points
    counters: list[str]  # the big numbers of a counter panel


def panels(dom: str) -> list[Panel]:
    """The dashboard's panels in page order, each with what it drew (split at each panel's title)."""
    titles = list(PANEL_TITLE.finditer(dom))
    found = []
    for index, title in enumerate(titles):
        end = titles[index + 1].start() if index + 1 < len(titles) else len(dom)
        body = dom[title.end() : end]
        found.append(Panel(title.group(1), len(LINE.findall(body)), COUNTER.findall(body)))
    return found
