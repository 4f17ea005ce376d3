"""Targets from issue 6, the summary table, the JSON file and the PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _get(results: dict[str, Any], server: str, scenario: str, conns: int, key: str) -> Any:
    return results.get("http", {}).get(server, {}).get(scenario, {}).get(str(conns), {}).get(key)


def targets(results: dict[str, Any], conns: int) -> list[dict[str, Any]]:
    def row(name: str, value: Any, target: str, ok: bool | None) -> dict[str, Any]:
        verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        return {"target": name, "measured": value, "wanted": target, "verdict": verdict}

    def clean(scenario: str) -> bool:
        # A throughput with error responses in it is not a pass, whatever its size.
        return not _get(results, "product", scenario, conns, "errors")

    v_rps = _get(results, "product", "validate_activated", conns, "rps")
    v_p99 = _get(results, "product", "validate_activated", conns, "p99_ms")
    f_rps = _get(results, "floor", "validate_activated", conns, "rps")
    l_rps = _get(results, "product", "list_projects_page1", conns, "rps")
    d_rps = _get(results, "product", "list_projects_deep", conns, "rps")
    ratio = round(v_rps / f_rps, 3) if v_rps and f_rps else None
    deep = round(l_rps / d_rps, 3) if l_rps and d_rps else None
    rls = results.get("rls", {}).get("ratio_explain_execution")
    rls_trip = results.get("rls", {}).get("ratio_roundtrip_median")
    hz = results.get("healthz_under_logins", {}).get("healthz_p99_ms")
    rss = results.get("rss_mb_per_worker") or []
    c = f"@{conns} conns"
    return [
        row(
            f"validateLicense activated rps (0 errors) {c}",
            v_rps,
            ">= 2500",
            None if v_rps is None else v_rps >= 2500 and clean("validate_activated"),
        ),
        row(
            f"validateLicense activated p99 ms {c}",
            v_p99,
            "<= 25",
            None if v_p99 is None else v_p99 <= 25,
        ),
        row(
            f"validateLicense product/floor {c}",
            ratio,
            ">= 0.6",
            None if ratio is None else ratio >= 0.6,
        ),
        row(
            f"listProjects 50 rows rps (0 errors) {c}",
            l_rps,
            ">= 1200",
            None if l_rps is None else l_rps >= 1200 and clean("list_projects_page1"),
        ),
        row(
            "listProjects page1 rps / deep rps",
            deep,
            "<= 1.2",
            None if deep is None else deep <= 1.2,
        ),
        row(
            "RLS on/off (EXPLAIN execution time)",
            rls,
            "<= 1.1",
            None if rls is None else rls <= 1.1,
        ),
        row(
            "RLS on/off (round trip, median)",
            rls_trip,
            "<= 1.1",
            None if rls_trip is None else rls_trip <= 1.1,
        ),
        row("/healthz p99 ms under 10 logins", hz, "< 50", None if hz is None else hz < 50),
        row(
            "max RSS MB per worker",
            max(rss) if rss else None,
            "< 200",
            None if not rss else max(rss) < 200,
        ),
    ]


def print_tables(results: dict[str, Any]) -> None:
    print(
        f"\n== HTTP load (wrk or fallback; server with {results['config']['workers']} workers) =="
    )
    print(
        f"{'server':8} {'scenario':26} {'conns':>5} {'rps':>9} {'p50ms':>7} {'p95ms':>7} "
        f"{'p99ms':>7} {'errors':>6} {'srvCPU':>7} {'pgCPU':>7} {'other':>7}"
    )
    for server, scenarios in results.get("http", {}).items():
        for scenario, by_conns in scenarios.items():
            for conns, r in by_conns.items():
                print(
                    f"{server:8} {scenario:26} {conns:>5} {r['rps']:>9.1f} {r['p50_ms']:>7.2f} "
                    f"{r['p95_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['errors']:>6} "
                    f"{r.get('server_cpu_s', 0):>7.1f} {r.get('postgres_cpu_s', 0):>7.1f} "
                    f"{r.get('other_cpu_s', 0):>7.1f}"
                )
    for scenario, ratio in results.get("product_floor_ratio", {}).items():
        print(f"product/floor throughput {scenario}: {ratio}")
    if results.get("inprocess"):
        print("\n== in-process CPU µs per request (direct ASGI calls, one process) ==")
        for app_name, scen in results["inprocess"].items():
            for name, r in scen.items():
                print(
                    f"{app_name:8} {name:26} cpu {r['cpu_us_per_request']:>9.1f} µs   "
                    f"wall {r['wall_us_per_request']:>9.1f} µs   n={r['n']} errors={r['errors']}"
                )
    if results.get("rls"):
        print("\n== RLS on vs off ==")
        print(json.dumps(results["rls"], indent=2))
    print("\n== targets (issue 6) ==")
    for t in results["targets"]:
        print(
            f"{t['verdict']:5} {t['target']:48} measured {t['measured']!s:>10}  "
            f"wanted {t['wanted']}"
        )


def write(results: dict[str, Any], out_dir: Path, stamp: str) -> tuple[Path, Path | None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path, chart(results, out_dir / f"{stamp}.png")


def chart(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  chart: matplotlib is not installed (pip install -e '.[bench]'); no PNG")
        return None
    http = results.get("http", {})
    labels = []
    for scenario, by_conns in http.get("product", {}).items():
        for conns in by_conns:
            labels.append((scenario, conns))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 8))
    width = 0.4
    xs = range(len(labels))
    for offset, server in ((-width / 2, "product"), (width / 2, "floor")):
        rps = [http.get(server, {}).get(s, {}).get(c, {}).get("rps", 0) for s, c in labels]
        p99 = [http.get(server, {}).get(s, {}).get(c, {}).get("p99_ms", 0) for s, c in labels]
        ax1.bar([x + offset for x in xs], rps, width, label=server)
        ax2.bar([x + offset for x in xs], p99, width, label=server)
    names = [f"{s}\n@{c}" for s, c in labels]
    for ax, title in ((ax1, "requests/s"), (ax2, "p99 latency (ms)")):
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, fontsize=7)
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"CODITECT Cloud benchmark ({results['config']['scale']['name']} scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
