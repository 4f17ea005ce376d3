"""License tiers and the features each includes by default: the one place that says so."""

from __future__ import annotations

TIERS = ("FREE", "PRO", "ENTERPRISE")
DEFAULT_FEATURES: dict[str, tuple[str, ...]] = {
    "FREE": ("core", "cli"),
    "PRO": ("core", "cli", "cloud-sync", "priority-support"),
    "ENTERPRISE": (
        "core",
        "cli",
        "cloud-sync",
        "priority-support",
        "sso",
        "audit-export",
        "on-prem-runner",
    ),
}
