"""Which database the server uses: DATABASE_URL, or an embedded one it starts and migrates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.config import Settings
from db import embedded, migrations

log = logging.getLogger(__name__)

APP_ROLE = "coditect_app"
SYSTEM_ROLE = "coditect_system"


@dataclass
class Dsns:
    app: str
    system: str | None
    admin: str | None
    cluster: embedded.Cluster | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def start_embedded(settings: Settings) -> Dsns:
    cluster = embedded.start(settings.data_dir / "pgdata")
    cluster.ensure_database()
    return Dsns(
        app=cluster.dsn(APP_ROLE),
        system=cluster.dsn(SYSTEM_ROLE),
        admin=cluster.admin_dsn(),
        cluster=cluster,
    )


def prepare(settings: Settings) -> Dsns:
    """Resolve the connection URLs and bring the schema up to date where we may."""
    if settings.database_url is None:
        dsns = start_embedded(settings)
    else:
        dsns = Dsns(
            app=settings.database_url,
            system=settings.database_system_url,
            admin=settings.database_admin_url,
        )
    if dsns.admin is not None:
        applied = migrations.apply(dsns.admin)
        if applied:
            log.info("applied migrations %s", ", ".join(applied))
    return dsns
