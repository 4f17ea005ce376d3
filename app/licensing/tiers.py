"""License tiers and their defaults (seats, features, churn limits): the one place that says so."""

from __future__ import annotations

from dataclasses import dataclass

TIERS = ("FREE", "PRO", "ENTERPRISE")


@dataclass(frozen=True)
class TierDefaults:
    """What a license of a tier gets unless its issuer says otherwise."""

    seats: int
    machine_bound: bool
    features: tuple[str, ...]
    # Churn limits: at most this many new activations, and deactivations, per license in any
    # rolling window of churn_window_seconds (a license may override each).
    activation_limit: int
    deactivation_limit: int
    churn_window_seconds: int


DAY = 86_400
DEFAULTS: dict[str, TierDefaults] = {
    "FREE": TierDefaults(
        seats=1,
        machine_bound=True,
        features=("core", "cli"),
        activation_limit=5,
        deactivation_limit=5,
        churn_window_seconds=DAY,
    ),
    "PRO": TierDefaults(
        seats=5,
        machine_bound=True,
        features=("core", "cli", "cloud-sync", "priority-support"),
        activation_limit=100,
        deactivation_limit=100,
        churn_window_seconds=DAY,
    ),
    "ENTERPRISE": TierDefaults(
        seats=25,
        machine_bound=True,
        features=(
            "core",
            "cli",
            "cloud-sync",
            "priority-support",
            "sso",
            "audit-export",
            "on-prem-runner",
        ),
        activation_limit=1000,
        deactivation_limit=1000,
        churn_window_seconds=DAY,
    ),
}
DEFAULT_FEATURES: dict[str, tuple[str, ...]] = {
    tier: defaults.features for tier, defaults in DEFAULTS.items()
}
# A license not bound to machines is floating and always has a lease: this one unless its
# issuer chooses another (between MIN_LEASE_SECONDS and MAX_LEASE_SECONDS).
FLOATING_LEASE_SECONDS = 3600
MIN_LEASE_SECONDS = 300
MAX_LEASE_SECONDS = 365 * DAY
# Bounds of a license's own churn limits (null on the license: the tier's), as the schema
# (0015's CHECKs) and the operator API's request bodies hold them.
MIN_CHURN_LIMIT = 1
MAX_CHURN_LIMIT = 100_000
MIN_CHURN_WINDOW_SECONDS = 60
MAX_CHURN_WINDOW_SECONDS = 365 * DAY
