"""The benchmark's code paths at tiny scale: data load, product, peers and floor, load, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.slow

EXPECTED = {
    "config",
    "data",
    "http",
    "healthz_under_logins",
    "rss_mb_per_worker",
    "peer_rss_mb_per_worker",
    "ratios",
    "inprocess",
    "rls",
    "explain",
    "targets",
}


def test_bench_small_scale_writes_results(tmp_path: Path) -> None:
    args = ["run", "--scale", "small", "--connections", "4", "--duration", "2"]
    args += ["--rounds", "1", "--inprocess-n", "20", "--no-install", "--output", str(tmp_path)]
    if shutil.which("wrk") is None:
        args.append("--python-load")
    assert main(args) == 0
    (path,) = tmp_path.glob("*.json")
    results = json.loads(path.read_text())
    assert set(results) >= EXPECTED
    http = results["http"]
    product = http["product"]
    assert set(product) == {
        "validate_activated",
        "validate_new_fingerprint",
        "list_projects_page1",
        "list_projects_deep",
        "get_current_user",
        "login",
    }
    assert set(http) == {"product", "fastapi", "fastapi+rl", "floor"}
    for peer in ("fastapi", "fastapi+rl", "floor"):
        assert set(http[peer]) == set(product) - {"login"}
    for server in http.values():
        for by_conns in server.values():
            run = by_conns["4"]
            assert {"rps", "p50_ms", "p95_ms", "p99_ms", "errors", "server_cpu_s"} <= set(run)
            assert run["requests"] > 0
            assert run["errors"] == 0, run
            assert len(run["rounds_rps"]) == 1
    for app_name in ("product", "fastapi", "fastapi+rl", "floor"):
        assert all(r["errors"] == 0 for r in results["inprocess"][app_name].values()), app_name
    assert set(results["ratios"]["validate_activated@4"]) == {
        "product/fastapi",
        "product/fastapi+rl",
        "product/floor",
    }
    assert results["rls"]["rows_as_app_role"] > 0
    assert "Execution Time" in results["explain"]["projects.list_projects_first"]
    assert len(results["targets"]) == 14
    assert (tmp_path / path.name.replace(".json", ".png")).exists() or not _has_matplotlib()


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
