"""Redocly CLI: openapi.yaml lints clean (scripts/lint-spec), and the static HTML reference
builds from it (scripts/build-docs). Both run the @redocly/cli pinned in package-lock.json."""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from app.edge import spec

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed (CI has them)",
)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env=os.environ | {"REDOCLY_TELEMETRY": "off"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def redocly() -> None:
    """node_modules as package-lock.json pins it (`npm ci`, once)."""
    result = run(str(ROOT / "scripts" / "install-node-tools"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_spec_passes_redocly_lint(redocly: None) -> None:
    # redocly.yaml extends `recommended-strict`: a warning is an error, so exit 0 means none.
    result = run(str(ROOT / "scripts" / "lint-spec"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Your API description is valid" in output, output


def test_the_lint_config_refuses_a_4xx_that_is_not_problem_json(
    redocly: None, tmp_path: Path
) -> None:
    """The RFC 7807 rule is on: a copy of the spec whose 400 answers plain JSON fails."""
    document = copy.deepcopy(spec.load())
    content = document["components"]["responses"]["BadRequest"]["content"]
    content["application/json"] = content.pop("application/problem+json")
    broken = tmp_path / "openapi.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    result = run(
        "npx", "--no", "--", "redocly", "lint", str(broken),
        "--config", str(ROOT / "redocly.yaml"),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "operation-4xx-problem-details-rfc7807" in output, output


def test_build_docs_writes_a_self_contained_html_reference(redocly: None, tmp_path: Path) -> None:
    output = tmp_path / "docs" / "api-reference.html"
    result = run(str(ROOT / "scripts" / "build-docs"), str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    html = output.read_text(encoding="utf-8")
    document = spec.load()
    assert f"<title>{document['info']['title']}</title>" in html
    for _path, _method, operation in spec.operations(document):
        assert operation["operationId"] in html, operation["operationId"]
    # Self-contained: no script or stylesheet fetched from elsewhere.
    assert not re.search(r"<script[^>]*\ssrc=", html)
    assert not re.search(r"<link[^>]*rel=\"?stylesheet", html)


def shown_in_chromium(url: str, profile: Path) -> str:
    """The text a person sees once the page's scripts ran (headless Chromium, nothing but this
    machine reachable: a page that needed a CDN would not render)."""
    rendered = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",  # tests may run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    visible = re.sub(r"<(script|style)\b.*?</\1>", " ", rendered.stdout, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", visible)).split())


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Chromium (apt-get install chromium)"
)
def test_the_html_reference_opens_in_a_browser_and_lists_every_operation(
    redocly: None, tmp_path: Path
) -> None:
    output = tmp_path / "api-reference.html"
    assert run(str(ROOT / "scripts" / "build-docs"), str(output)).returncode == 0
    document = spec.load()
    front = shown_in_chromium(output.as_uri(), tmp_path / "profile")
    assert document["info"]["title"] in front
    # The navigation lists a tag's operations once the tag is opened (its link: #tag/<name>).
    by_tag: dict[str, list[str]] = {}
    for _path, _method, operation in spec.operations(document):
        by_tag.setdefault(operation["tags"][0], []).append(" ".join(operation["summary"].split()))
    missing = {}
    for tag, summaries in by_tag.items():
        assert tag in front, tag
        shown = shown_in_chromium(f"{output.as_uri()}#tag/{tag}", tmp_path / f"profile-{tag}")
        assert "Something went wrong" not in shown
        missing[tag] = [summary for summary in summaries if summary not in shown]
    assert missing == {tag: [] for tag in by_tag}
