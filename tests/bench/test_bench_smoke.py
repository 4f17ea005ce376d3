"""The benchmark's code paths at tiny scale: data load, product and floor servers, load, report."""

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
    "product_floor_ratio",
    "inprocess",
    "rls",
    "explain",
    "targets",
}


def test_bench_small_scale_writes_results(tmp_path: Path) -> None:
    args = ["run", "--scale", "small", "--connections", "4", "--duration", "2"]
    args += ["--inprocess-n", "20", "--no-install", "--output", str(tmp_path)]
    if shutil.which("wrk") is None:
        args.append("--python-load")
    assert main(args) == 0
    (path,) = tmp_path.glob("*.json")
    results = json.loads(path.read_text())
    assert set(results) >= EXPECTED
    product, floor = results["http"]["product"], results["http"]["floor"]
    assert set(product) == {
        "validate_activated",
        "validate_new_fingerprint",
        "list_projects_page1",
        "list_projects_deep",
        "get_current_user",
        "login",
    }
    assert set(floor) <= set(product)
    for server in (product, floor):
        for by_conns in server.values():
            run = by_conns["4"]
            assert {"rps", "p50_ms", "p95_ms", "p99_ms", "errors", "server_cpu_s"} <= set(run)
            assert run["requests"] > 0
            assert run["errors"] == 0, run
    assert all(r["errors"] == 0 for r in results["inprocess"]["product"].values())
    assert results["rls"]["rows_as_app_role"] > 0
    assert "Execution Time" in results["explain"]["projects.list_projects_first"]
    assert len(results["targets"]) == 9
