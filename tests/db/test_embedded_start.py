"""Two embedded servers started at the same moment by two processes both start, one at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs in each process: pgserver.get_server (what db.embedded.start serializes) is traced, the
# time it is entered and left written to a file, with a pause inside so that two unserialized
# starts would overlap for sure.
STARTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pgserver
    import psycopg
    from db import embedded

    pgdata, trace, start_at = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    get_server = pgserver.get_server

    def traced(*args, **kwargs):
        entered = time.time()
        time.sleep(0.5)
        try:
            return get_server(*args, **kwargs)
        finally:
            trace.write_text(f"{entered} {time.time()}")

    pgserver.get_server = traced
    time.sleep(max(0.0, start_at - time.time()))  # both processes start together
    cluster = embedded.start(pgdata)
    try:
        with psycopg.connect(cluster.admin_dsn("postgres")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        cluster.stop()
    """
)


@pytest.mark.slow
def test_two_first_starts_at_once_both_succeed_one_at_a_time(tmp_path: Path) -> None:
    script = tmp_path / "start.py"
    script.write_text(STARTER)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    start_at = time.time() + 3  # past both interpreters' imports
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / f"pgdata{n}"),
                str(tmp_path / f"trace{n}"),
                str(start_at),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in (1, 2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
    for n in (1, 2):
        assert (tmp_path / f"pgdata{n}" / "PG_VERSION").exists()
    (a_in, a_out), (b_in, b_out) = (
        map(float, (tmp_path / f"trace{n}").read_text().split()) for n in (1, 2)
    )
    # One start runs while the other waits for the lock: their critical sections never overlap.
    assert a_out <= b_in or b_out <= a_in, ((a_in, a_out), (b_in, b_out))
