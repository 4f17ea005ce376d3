"""The one object create_app() builds: everything a request needs, reached from one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from app import context
from app.auth.keys import KeySet
from app.auth.passwords import Passwords
from app.auth.tokens import TokenIssuer
from app.auth.verifier import TokenVerifier
from app.config import Settings
from app.edge.metrics import Metrics, process_metrics
from app.edge.ratelimit import RateLimiter
from app.edge.spec import AllowedMethods
from app.rules.idempotency import Sealer
from app.rules.pagination import CursorCodec
from db import Database, NotConnected


@dataclass(eq=False)
class Runtime:
    """Built once per application by create_app(); the database is attached when it starts
    serving (its address may only be known then: the embedded server starts in the lifespan)."""

    settings: Settings
    keys: KeySet
    verifier: TokenVerifier
    tokens: TokenIssuer
    passwords: Passwords
    limiter: RateLimiter
    cursors: CursorCodec
    sealer: Sealer
    allowed: AllowedMethods
    metrics: Metrics
    _database: Database | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, allowed: AllowedMethods) -> Runtime:
        keys = KeySet.load(
            settings.data_dir,
            settings.jwt_private_key_file,
            settings.license_signing_key_file,
            settings.jwt_previous_key_files,
            settings.license_previous_key_files,
        )
        metrics = process_metrics()
        return cls(
            settings=settings,
            keys=keys,
            verifier=TokenVerifier(
                keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            ),
            tokens=TokenIssuer(
                keys.token_key,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_s=settings.access_token_ttl_s,
            ),
            passwords=Passwords(settings.password_hashing),
            limiter=RateLimiter(settings, metrics),
            cursors=CursorCodec(keys.cursor_secret()),
            sealer=Sealer(keys.sealing_secrets()),
            allowed=allowed,
            metrics=metrics,
        )

    @property
    def database(self) -> Database:
        if self._database is None:
            raise NotConnected("the application has not started serving")
        return self._database

    def attach(self, database: Database | None) -> None:
        self._database = database


def current() -> Runtime:
    """The Runtime of the application serving the current request."""
    found = context.runtime.get()
    if not isinstance(found, Runtime):
        raise RuntimeError("no application is serving this request")
    return found
