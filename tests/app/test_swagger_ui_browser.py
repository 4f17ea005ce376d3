"""Swagger UI renders the 3.1 contract in a real browser: headless Chromium (Debian's
`chromium` package; skipped without it) loads /api/v1/ui/ from a running server, with every
other host unreachable, and the rendered page shows every path and schema."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

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
