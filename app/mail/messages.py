"""The plain-text account messages; their links carry nothing but the token."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def link(base_url: str, page: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/{page}?token={quote(token, safe='')}"


def password_reset(base_url: str, token: str, valid_minutes: int) -> Message:
    return Message(
        subject="Reset your CODITECT password",
        body=(
            "Someone asked to reset the password of the CODITECT account for this address.\n"
            "\n"
            f"To choose a new password, open this link within {valid_minutes} minutes:\n"
            "\n"
            f"{link(base_url, 'reset-password', token)}\n"
            "\n"
            "The link works once. Resetting the password signs you out everywhere.\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        ),
    )


def invitation(base_url: str, token: str, organization_name: str, valid_days: int) -> Message:
    return Message(
        subject=f"You are invited to {organization_name} on CODITECT",
        body=(
            f"You have been invited to join {organization_name} on CODITECT.\n"
            "\n"
            f"To accept, choose your password with this link within {valid_days} days:\n"
            "\n"
            f"{link(base_url, 'accept-invitation', token)}\n"
            "\n"
            "The link works once. If you did not expect this invitation, ignore this message.\n"
        ),
    )
