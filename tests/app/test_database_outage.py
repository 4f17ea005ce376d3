"""The database stopped under a burst of writes and started again: every answer in the outage is
a quick 503, the server recovers by itself, and every acknowledged write is there, whole."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from db import embedded, migrations
from tests.conftest import TestDatabase
from tests.servers import UNLIMITED, running_server

POOL_TIMEOUT_S = 2.0
# A request in the outage waits for the pool at most POOL_TIMEOUT_S; the rest is this busy
# machine's scheduling (2 cores shared), not the server waiting.
SLACK_S = 1.5
WRITERS = 6


@dataclass
class Answer:
    sent: float
    answered: float
    status: int
    retry_after: str | None
    project_id: str | None


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[TestDatabase]:
    """A PostgreSQL of this test's own, which it may stop and start."""
    cluster = embedded.start(tmp_path / "pg")
    try:
        cluster.ensure_database("outage")
        migrations.apply(cluster.admin_dsn("outage"))
        yield TestDatabase(cluster, "outage")
    finally:
        cluster.stop()


def stop_database(cluster: embedded.Cluster) -> None:
    from pgserver import _commands

    server = cluster.handle
    # Fast shutdown: sessions are terminated (57P01) and open transactions rolled back.
    _commands.pg_ctl(
        ["-w", "-m", "fast", "stop"],
        pgdata=server.pgdata,  # type: ignore[union-attr]
        user=server.system_user,  # type: ignore[union-attr]
    )


def start_database(cluster: embedded.Cluster) -> None:
    server = cluster.handle
    server.ensure_postgres_running()  # type: ignore[union-attr]
    # Same data directory, same socket directory: the server's URL still points to it.
    assert server.get_uri().find(cluster.socket_dir) > 0  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_database_outage_under_load_answers_503_quickly_and_recovers_by_itself(
    own_cluster: TestDatabase, tmp_path: Path
) -> None:
    with running_server(
        own_cluster,
        tmp_path / "server",
        DATABASE_POOL_TIMEOUT_SECONDS=str(POOL_TIMEOUT_S),
        DATABASE_POOL_SIZE="4",
        **UNLIMITED,
    ) as base:
        signup = httpx.post(
            f"{base}/api/v1/auth/signup",
            json={
                "email": "outage@example.test",
                "password": "outage password",
                "full_name": "Outage Test",
                "organization_name": "Outage Org",
            },
        )
        assert signup.status_code == 201, signup.text
        organization_id = signup.json()["organization"]["id"]
        headers = {"Authorization": f"Bearer {signup.json()['tokens']['access_token']}"}
        answers: list[Answer] = []
        done = threading.Event()

        def write() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                while not done.is_set():
                    sent = time.monotonic()
                    response = client.post(
                        "/api/v1/projects", json={"name": f"p-{uuid.uuid4().hex[:12]}"}
                    )
                    body = response.json()
                    answers.append(
                        Answer(
                            sent,
                            time.monotonic(),
                            response.status_code,
                            response.headers.get("retry-after"),
                            body.get("id") if response.status_code == 201 else None,
                        )
                    )

        writers = [threading.Thread(target=write) for _ in range(WRITERS)]
        for writer in writers:
            writer.start()
        try:
            time.sleep(1.5)
            stopping = time.monotonic()
            stop_database(own_cluster.cluster)
            stopped = time.monotonic()
            # Long enough for psycopg_pool's own backoff (1, 2, 4... s) to leave the pool
            # without an attempt for seconds after the restart.
            time.sleep(8)
            restarting = time.monotonic()
            start_database(own_cluster.cluster)
            started = time.monotonic()
            time.sleep(POOL_TIMEOUT_S + 1.5)  # past the requests sent in the outage
        finally:
            done.set()
            for writer in writers:
                writer.join(60)

        # The first request after the restart succeeds.
        first = httpx.post(
            f"{base}/api/v1/projects", headers=headers, json={"name": "after the outage"}
        )
        assert first.status_code == 201, first.text

    assert {a.status for a in answers} <= {201, 503}, sorted({a.status for a in answers})
    before = [a for a in answers if a.answered < stopping]
    outage = [a for a in answers if a.sent >= stopped and a.answered <= restarting]
    after = [a for a in answers if a.sent >= started]
    assert before, "no write before the outage"
    assert all(a.status == 201 for a in before), [a.status for a in before]
    assert len(outage) >= WRITERS, "too few requests in the outage"
    assert all(a.status == 503 for a in outage), [a.status for a in outage]
    assert all(a.answered - a.sent <= POOL_TIMEOUT_S + SLACK_S for a in outage), max(
        a.answered - a.sent for a in outage
    )
    assert all(a.retry_after and int(a.retry_after) > 0 for a in answers if a.status == 503)
    assert after, "no write after the restart"
    assert all(a.status == 201 for a in after), [a.status for a in after]

    # Every acknowledged write is there, each project with its audit entry: nothing half-done.
    acknowledged = {a.project_id for a in answers if a.project_id} | {first.json()["id"]}
    with psycopg.connect(own_cluster.admin_dsn) as conn:
        stored = {
            str(row[0])
            for row in conn.execute(
                "select id from projects where organization_id = %s", (organization_id,)
            )
        }
        audited = {
            str(row[0])
            for row in conn.execute(
                "select target_id from audit_log where organization_id = %s"
                " and action = 'project.created'",
                (organization_id,),
            )
        }
    assert acknowledged <= stored
    assert stored == audited
