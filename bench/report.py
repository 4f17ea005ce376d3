"""Targets of issue 15 (ratios in one run), the summary table, the JSON file and the PNG chart."""

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
        return not any(
            _get(results, server, scenario, conns, "errors")
            for server in ("product", "fastapi", "floor")
        )

    def ratio(scenario: str, peer: str, key: str = "rps") -> float | None:
        mine = _get(results, "product", scenario, conns, key)
        theirs = _get(results, peer, scenario, conns, key)
        return round(mine / theirs, 3) if mine and theirs else None

    c = f"@{conns} conns"
    out = []
    wanted = {
        "validate_activated": 1.0,
        "list_projects_page1": 1.1,
        "list_projects_deep": 1.1,
        "get_current_user": 1.1,
    }
    for scenario, least in wanted.items():
        value = ratio(scenario, "fastapi")
        out.append(
            row(
                f"{scenario} product/FastAPI rps {c}",
                value,
                f">= {least}",
                None if value is None else value >= least and clean(scenario),
            )
        )
    p99 = ratio("validate_activated", "fastapi", "p99_ms")
    out.append(
        row(
            f"validate_activated p99 product/FastAPI {c}",
            p99,
            "<= 1.0",
            None if p99 is None else p99 <= 1.0,
        )
    )
    for scenario in wanted:
        value = ratio(scenario, "floor")
        out.append(
            row(
                f"{scenario} product/floor rps {c}",
                value,
                ">= 0.8",
                None if value is None else value >= 0.8 and clean(scenario),
            )
        )
    l_rps = _get(results, "product", "list_projects_page1", conns, "rps")
    d_rps = _get(results, "product", "list_projects_deep", conns, "rps")
    deep = round(l_rps / d_rps, 3) if l_rps and d_rps else None
    out.append(
        row(
            "listProjects page1 rps / deep rps",
            deep,
            "<= 1.2",
            None if deep is None else deep <= 1.2,
        )
    )
    rls = results.get("rls", {}).get("ratio_explain_execution")
    rls_trip = results.get("rls", {}).get("ratio_roundtrip_median")
    out.append(
        row(
            "RLS on/off (EXPLAIN execution time)",
            rls,
            "<= 1.1",
            None if rls is None else rls <= 1.1,
        )
    )
    out.append(
        row(
            "RLS on/off (round trip, median)",
            rls_trip,
            "<= 1.1",
            None if rls_trip is None else rls_trip <= 1.1,
        )
    )
    rss = results.get("rss_mb_per_worker") or []
    peer_rss = (results.get("peer_rss_mb_per_worker") or {}).get("fastapi") or []
    rss_ratio = round(max(rss) / max(peer_rss), 3) if rss and peer_rss else None
    out.append(
        row(
            "max RSS per worker, product/FastAPI",
            rss_ratio,
            "<= 1.2",
            None if rss_ratio is None else rss_ratio <= 1.2,
        )
    )
    hz = results.get("healthz_under_logins", {}).get("healthz_p99_ms")
    out.append(
        row(
            "/healthz p99 ms under 10 logins (issue 6)", hz, "< 50", None if hz is None else hz < 50
        )
    )
    return out


def print_tables(results: dict[str, Any]) -> None:
    print(
        f"\n== HTTP load (wrk or fallback; server with {results['config']['workers']} workers) =="
    )
    print(
        f"{'server':10} {'scenario':26} {'conns':>5} {'rps':>9} {'p50ms':>7} {'p95ms':>7} "
        f"{'p99ms':>7} {'errors':>6} {'srvCPU':>7} {'pgCPU':>7} {'other':>7}"
    )
    for server, scenarios in results.get("http", {}).items():
        for scenario, by_conns in scenarios.items():
            for conns, r in by_conns.items():
                print(
                    f"{server:10} {scenario:26} {conns:>5} {r['rps']:>9.1f} {r['p50_ms']:>7.2f} "
                    f"{r['p95_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['errors']:>6} "
                    f"{r.get('server_cpu_s', 0):>7.1f} {r.get('postgres_cpu_s', 0):>7.1f} "
                    f"{r.get('other_cpu_s', 0):>7.1f}"
                )
    for scenario, by_peer in results.get("ratios", {}).items():
        print(f"{scenario:30} " + "  ".join(f"{k} {v:.3f}" for k, v in by_peer.items()))
    if results.get("inprocess"):
        print("\n== in-process CPU µs per request (direct ASGI calls, one process) ==")
        for app_name, scen in results["inprocess"].items():
            for name, r in scen.items():
                print(
                    f"{app_name:10} {name:26} cpu {r['cpu_us_per_request']:>9.1f} µs   "
                    f"wall {r['wall_us_per_request']:>9.1f} µs   n={r['n']} errors={r['errors']}"
                )
    if results.get("rls"):
        print("\n== RLS on vs off ==")
        print(json.dumps(results["rls"], indent=2))
    print("\n== targets (issue 15: ratios measured in this run) ==")
    for t in results["targets"]:
        print(
            f"{t['verdict']:5} {t['target']:52} measured {t['measured']!s:>10}  "
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
    servers = [name for name in ("product", "fastapi", "fastapi+rl", "floor") if name in http]
    width = 0.8 / len(servers)
    xs = range(len(labels))
    for i, server in enumerate(servers):
        offset = (i - (len(servers) - 1) / 2) * width
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
