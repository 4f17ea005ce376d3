"""bench instructions: callgrind counts each app's instructions per request, in process."""

from __future__ import annotations

import pytest

from bench import instructions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(instructions.missing_tools()),
        reason=f"needs {', '.join(instructions.missing_tools())} (valgrind, gcc); CI has them",
    ),
]


def test_counts_instructions_per_request_for_product_and_floor() -> None:
    counts = instructions.run(
        5, {"product": ["validate_activated"], "floor": ["validate_activated"]}
    )
    product = counts["product"]["validate_activated"]
    floor = counts["floor"]["validate_activated"]
    # Either app spends hundreds of thousands of instructions on a validation; the product
    # does the floor's work (same SQL, signing and JSON) and its framework's on top.
    assert 100_000 < floor < product < 50_000_000, counts


def test_served_counts_include_the_http_server() -> None:
    scenario = {"product": ["get_current_user"]}
    in_process = instructions.run(5, scenario)["product"]["get_current_user"]
    served = instructions.run(5, scenario, served=True)["product"]["get_current_user"]
    # The same request through uvicorn: HTTP parsing and the response's bytes on top, but
    # not start-up, the warm-up or a background poll (each would add millions).
    assert in_process < served < in_process * 1.5, (in_process, served)
