"""Tier defaults: public.license_tiers (what signup reads) is exactly app/licensing/tiers.py."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import psycopg

from app.licensing.tiers import DEFAULTS, TIERS


def test_the_table_mirrors_tiers_py(database: Any) -> None:
    with psycopg.connect(database.app_dsn) as conn:
        rows = conn.execute(
            "select tier::text, seats, machine_bound, features, activation_limit,"
            " deactivation_limit, churn_window_seconds from license_tiers order by tier::text"
        ).fetchall()
    stored = {
        tier: {
            "seats": seats,
            "machine_bound": bound,
            "features": tuple(features),
            "activation_limit": activations,
            "deactivation_limit": deactivations,
            "churn_window_seconds": window,
        }
        for tier, seats, bound, features, activations, deactivations, window in rows
    }
    assert sorted(stored) == sorted(TIERS)
    assert stored == {tier: asdict(defaults) for tier, defaults in DEFAULTS.items()}


def test_the_app_role_reads_the_tiers_but_never_writes_them(database: Any) -> None:
    with psycopg.connect(database.app_dsn) as conn:
        for statement in (
            "update license_tiers set seats = 100",
            "insert into license_tiers select * from license_tiers",
            "delete from license_tiers",
        ):
            try:
                with conn.transaction():
                    conn.execute(statement)
            except psycopg.errors.InsufficientPrivilege:
                continue
            raise AssertionError(f"the app role may: {statement}")
