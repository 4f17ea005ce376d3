"""Swagger UI renders the 3.1 contract in a real browser: headless Chromium (Debian's
`chromium` package; skipped without it) loads /api/v1/ui/ from a running server, with every
other host unreachable, and the rendered page shows every path and schema; "Try it out" on
getHealth shows the server's 200."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from app.edge import spec
from tests.conftest import TestDatabase
from tests.servers import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def server(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The default limits: the UI's own requests are not counted against them.
    with running_server(database, tmp_path_factory.mktemp("ui-server")) as url:
        yield url


def chromium(url: str, profile: Path, *options: str) -> str:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # tests may run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        # Only this machine answers: a page needing a CDN would not render.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        # Scripts and fetches run until the page is idle, within this virtual time.
        "--virtual-time-budget=20000",
        "--window-size=1280,4000",
        *options,
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_renders_every_path_and_schema_of_the_contract(
    server: str, tmp_path: Path
) -> None:
    dom = chromium(f"{server}/api/v1/ui/", tmp_path / "profile", "--dump-dom")
    (tmp_path / "dom.html").write_text(dom)  # kept with the test's temporary files
    document = spec.load()
    assert "Unable to render this definition" not in dom
    assert re.search(r'<pre class="version">\s*OAS 3\.1\s*</pre>', dom), dom[:2000]
    assert document["info"]["title"] in dom
    rendered = set(re.findall(r'data-path="([^"]+)"', dom))
    assert rendered == set(document["paths"]), sorted(set(document["paths"]) ^ rendered)
    # Swagger UI 5's JSON Schema 2020-12 rendering: one top-level entry per component schema.
    models = re.findall(
        r'data-json-schema-level="0"[^>]*>.*?class="json-schema-2020-12__title">([^<]*)<', dom
    )
    assert models == list(document["components"]["schemas"])
    # The service endpoints are offered at the root, as their path-level servers say.
    assert "/api/v1" in dom


def test_a_screenshot_of_the_ui_is_taken(server: str, tmp_path: Path) -> None:
    shot = tmp_path / "swagger-ui.png"
    chromium(f"{server}/api/v1/ui/", tmp_path / "profile", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


class DevTools:
    """Chromium driven over its DevTools protocol (the websocket the browser itself opens):
    enough to load a page, run a script in it and wait for what it shows."""

    def __init__(self, url: str, profile: Path) -> None:
        assert CHROMIUM is not None
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,2000",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()]
        target = next(t for t in pages if t["type"] == "page")
        self.socket = connect(target["webSocketDebuggerUrl"], max_size=None)
        self.next_id = 0

    def evaluate(self, expression: str) -> Any:
        self.next_id += 1
        message = {"id": self.next_id, "method": "Runtime.evaluate"}
        message["params"] = {"expression": expression, "returnByValue": True}
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=30))
            if reply.get("id") == self.next_id:
                return reply["result"]["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"never true in the page: {expression}"
            time.sleep(0.25)

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def test_try_it_out_on_get_health_shows_the_servers_200(server: str, tmp_path: Path) -> None:
    # A person's path through the page: open the operation, "Try it out", "Execute", and read
    # the live response Swagger UI shows (its request goes to this server, at the root path
    # the operation's own `servers` names).
    browser = DevTools(f"{server}/api/v1/ui/", tmp_path / "profile")
    try:
        block = "document.querySelector('#operations-service-getHealth')"
        browser.wait_for(f"!!{block}")
        browser.evaluate(f"{block}.querySelector('.opblock-summary-control').click()")
        browser.wait_for(f"!!{block}.querySelector('.try-out__btn')")
        browser.evaluate(f"{block}.querySelector('.try-out__btn').click()")
        browser.wait_for(f"!!{block}.querySelector('.execute')")
        browser.evaluate(f"{block}.querySelector('.execute').click()")
        live = f"{block}.querySelector('.live-responses-table tbody .response-col_status')"
        status = browser.wait_for(f"{live} && {live}.textContent.trim()")
        assert status == "200"
        url = browser.evaluate(f"{block}.querySelector('.request-url pre').textContent")
        assert url == f"{server}/healthz"
        body = browser.evaluate(
            f"{block}.querySelector('.live-responses-table tbody pre').textContent"
        )
        assert json.loads(body) == {"status": "ok"}
    finally:
        browser.close()


def test_five_loads_in_a_minute_with_the_default_limits_all_render(
    server: str, tmp_path: Path
) -> None:
    # Each load fetches the page, its scripts and the contract: with the anonymous limit of 10
    # a minute, counting them would leave the second load without its scripts.
    for load in range(5):
        dom = chromium(f"{server}/api/v1/ui/", tmp_path / f"profile-{load}", "--dump-dom")
        assert re.search(r'<pre class="version">\s*OAS 3\.1\s*</pre>', dom), f"load {load + 1}"
        assert 'data-path="/healthz"' in dom, f"load {load + 1}"
