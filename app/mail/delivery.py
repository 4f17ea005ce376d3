"""The outbox worker: claims due messages, sends them over SMTP (or to the log), records it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from db import Database, Row, queries

log = logging.getLogger(__name__)
Q = queries("outbox")


class Transport(Protocol):
    async def send(self, message_id: uuid.UUID, recipient: str, subject: str, body: str) -> None:
        """Hand the message over, or raise."""


def plain_text(
    sender: str, message_id: uuid.UUID, recipient: str, subject: str, body: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # The outbox id: a message re-sent after a lost acknowledgement keeps its Message-ID,
    # so receiving systems can recognise the duplicate.
    message["Message-ID"] = f"<{message_id}@outbox.coditect>"
    message.set_content(body)
    return message


@dataclass(frozen=True)
class SmtpTransport:
    """smtp://[user:password@]host[:port] (STARTTLS when offered), smtps:// for implicit TLS."""

    url: str
    sender: str
    timeout_s: float = 20.0

    async def send(self, message_id: uuid.UUID, recipient: str, subject: str, body: str) -> None:
        parts = urlsplit(self.url)
        implicit_tls = parts.scheme == "smtps"
        await aiosmtplib.send(
            plain_text(self.sender, message_id, recipient, subject, body),
            hostname=parts.hostname or "localhost",
            port=parts.port or (465 if implicit_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit_tls,
            timeout=self.timeout_s,
        )


@dataclass(frozen=True)
class LogTransport:
    """No SMTP configured (the embedded default): each message, link included, goes to the log."""

    sender: str

    async def send(self, message_id: uuid.UUID, recipient: str, subject: str, body: str) -> None:
        log.warning(
            "no SMTP_URL configured: mail %s to %s not sent; its text follows\nSubject: %s\n\n%s",
            message_id,
            recipient,
            subject,
            body,
        )


def transport_for(smtp_url: str | None, sender: str) -> Transport:
    return SmtpTransport(smtp_url, sender) if smtp_url else LogTransport(sender)


@dataclass
class OutboxWorker:
    """One per server process; any number may run against one database (claims skip locked
    rows and are leased). A message is sent once unless a worker dies between the SMTP
    server's acceptance and recording it: then it is sent again, with the same Message-ID,
    when the lease expires."""

    database: Database
    transport: Transport
    poll_interval_s: float = 2.0
    batch: int = 10
    lease_s: int = 120
    max_attempts: int = 15
    backoff_base_s: float = 1.0
    backoff_max_s: float = 900.0

    def backoff_s(self, attempts: int) -> float:
        return min(self.backoff_base_s * 2 ** max(0, attempts - 1), self.backoff_max_s)

    async def run_once(self) -> int:
        """Claim one batch and deliver it; the number claimed."""
        claimed = await self._claim()
        for message in claimed:
            await self._deliver(message)
        return len(claimed)

    async def _claim(self) -> list[Row]:
        async with self.database.anonymous() as tx:
            return await tx.all(Q.claim_outbox, limit=self.batch, lease_seconds=self.lease_s)

    async def _deliver(self, message: Row) -> None:
        try:
            await asyncio.wait_for(
                self.transport.send(
                    message["id"], message["recipient"], message["subject"], message["body"]
                ),
                timeout=self.lease_s / 2,
            )
        except Exception as e:  # any failure of the transport is retried later
            delay = self.backoff_s(message["attempts"])
            log.warning(
                "mail %s: attempt %d failed (%s); next in %.0f s",
                message["id"],
                message["attempts"],
                type(e).__name__,
                delay,
            )
            await self.database.anonymous_statement(
                Q.retry_outbox,
                id=message["id"],
                lease_id=message["lease_id"],
                error=f"{type(e).__name__}: {e}"[:500],
                delay_seconds=delay,
                max_attempts=self.max_attempts,
            )
            return
        recorded = await self.database.anonymous_statement(
            Q.complete_outbox, id=message["id"], lease_id=message["lease_id"]
        )
        if not (recorded and recorded["recorded"]):
            log.error("mail %s was sent after its lease expired", message["id"])

    async def run(self) -> None:
        while True:
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox worker: a round failed; retrying")
                claimed = 0
            if claimed < self.batch:
                await asyncio.sleep(self.poll_interval_s)


@contextlib.asynccontextmanager
async def running(worker: OutboxWorker) -> AsyncIterator[None]:
    """The worker as a task for as long as the block runs."""
    task = asyncio.create_task(worker.run(), name="outbox-worker")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
