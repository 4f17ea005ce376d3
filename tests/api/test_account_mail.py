"""Password reset and invitations end to end, through a real SMTP server the tests run."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from app.config import Settings
from tests.api.conftest import PASSWORD, unique_email
from tests.conftest import TestDatabase
from tests.servers import free_port

BASE_URL = "https://app.coditect.example"
NEW_PASSWORD = "a freshly chosen passphrase"


class Inbox:
    """What the test SMTP server received, in order."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        # How long the server takes to accept a message: a slow server keeps a delivery in
        # flight long enough for another worker to try to take it too.
        self.delay_s = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay_s)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, recipient: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"].lower() == recipient.lower()]

    def wait_for(self, recipient: str, count: int = 1, timeout: float = 30) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.to(recipient)) >= count:
                return self.to(recipient)
            time.sleep(0.05)
        raise AssertionError(f"no message #{count} for {recipient} within {timeout} s")


class Smtp:
    """An aiosmtpd server on a fixed port that a test can take down and bring back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture(scope="module")
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_database(make_database: Callable[[], TestDatabase]) -> TestDatabase:
    """A database of its own: the suite's shared app delivers the shared database's mail to
    its log, and would take these messages from the outbox first."""
    from db import migrations

    fresh = make_database()
    migrations.apply(fresh.admin_dsn)
    return fresh


@pytest.fixture(scope="module")
def mail_settings(app_settings: Settings, mail_database: TestDatabase, smtp: Smtp) -> Settings:
    return dataclasses.replace(
        app_settings,
        database_url=mail_database.app_dsn,
        database_system_url=mail_database.system_dsn,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        mail_from="CODITECT <no-reply@coditect.example>",
        public_base_url=BASE_URL,
        mail_poll_interval_ms=50,
    )


@contextmanager
def serving(settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def api(mail_settings: Settings) -> Iterator[TestClient]:
    with serving(mail_settings) as client:
        yield client


@pytest.fixture
def mail_sql(mail_database: TestDatabase) -> Callable[..., list[tuple[Any, ...]]]:
    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(mail_database.superuser_dsn, autocommit=True) as conn:
            cur = conn.execute(statement, params)  # type: ignore[call-overload]
            return cur.fetchall() if cur.description else []

    return run


def token_of(message: EmailMessage, page: str) -> str:
    assert message.get_content_type() == "text/plain"
    text = message.get_content()
    (link,) = re.findall(r"https?://\S+", text)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL
    assert parts.path == f"/{page}"
    query = parse_qs(parts.query)
    assert list(query) == ["token"], "the link carries nothing but the token"
    (token,) = query["token"]
    assert len(token) >= 43, "256 bits"
    return token


def owner_of_new_org(api: TestClient) -> dict[str, Any]:
    body = {
        "email": unique_email("owner"),
        "password": PASSWORD,
        "full_name": "Olivia Owner",
        "organization_name": f"Mail Org {uuid.uuid4().hex[:6]}",
    }
    response = api.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    created["email"] = body["email"]
    created["headers"] = {"Authorization": f"Bearer {created['tokens']['access_token']}"}
    return created


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def login(api: TestClient, email_address: str, password: str) -> Any:
    return api.post("/api/v1/auth/login", json={"email": email_address, "password": password})


def request_reset(api: TestClient, address: str) -> None:
    response = api.post("/api/v1/auth/password/reset", json={"email": address})
    assert response.status_code == 202
    assert response.content == b""


def confirm_reset(api: TestClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return api.post(
        "/api/v1/auth/password/reset/confirm", json={"token": token, "new_password": password}
    )


def test_password_reset_end_to_end(api: TestClient, smtp: Smtp, mail_sql: Any) -> None:
    owner = owner_of_new_org(api)
    other_device = login(api, owner["email"], PASSWORD).json()
    request_reset(api, owner["email"].upper())
    (message,) = smtp.inbox.wait_for(owner["email"])
    assert message["Subject"] == "Reset your CODITECT password"
    assert message["From"] == "CODITECT <no-reply@coditect.example>"
    token = token_of(message, "reset-password")
    assert confirm_reset(api, token).status_code == 204
    for tokens in (owner["tokens"], other_device):
        assert api.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 401
    assert login(api, owner["email"], PASSWORD).status_code == 401
    assert login(api, owner["email"], NEW_PASSWORD).status_code == 200
    again = confirm_reset(api, token, "yet another passphrase")
    assert again.status_code == 401, "single use"
    assert login(api, owner["email"], NEW_PASSWORD).status_code == 200
    stored = mail_sql(
        "select status, body is null from outbox where recipient = %s", owner["email"]
    )
    assert stored == [("sent", True)], "a delivered message's token link is erased"
    audit = mail_sql("select action from audit_log where target_id = %s", owner["user"]["id"])
    assert ("user.password_reset",) in audit


def test_reset_answers_the_same_for_an_unknown_email_and_sends_nothing(
    api: TestClient, smtp: Smtp, mail_sql: Any
) -> None:
    owner = owner_of_new_org(api)
    nobody = unique_email("nobody")
    known = api.post("/api/v1/auth/password/reset", json={"email": owner["email"]})
    unknown = api.post("/api/v1/auth/password/reset", json={"email": nobody})
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    assert set(known.headers) == set(unknown.headers)
    smtp.inbox.wait_for(owner["email"])
    assert mail_sql("select count(*) from outbox where recipient = %s", nobody) == [(0,)]
    assert smtp.inbox.to(nobody) == []


def test_reset_tokens_wrong_or_expired_are_401(api: TestClient, smtp: Smtp, mail_sql: Any) -> None:
    owner = owner_of_new_org(api)
    assert confirm_reset(api, "not-a-token").status_code == 401
    request_reset(api, owner["email"])
    token = token_of(smtp.inbox.wait_for(owner["email"])[0], "reset-password")
    mail_sql(
        "update account_tokens set created_at = now() - interval '2 hours',"
        " expires_at = now() - interval '1 hour' where user_id = %s",
        owner["user"]["id"],
    )
    response = confirm_reset(api, token)
    assert response.status_code == 401
    assert response.json()["type"].endswith("/unauthorized")
    assert login(api, owner["email"], PASSWORD).status_code == 200, "nothing changed"


def test_resets_are_limited_per_email(api: TestClient, smtp: Smtp, mail_sql: Any) -> None:
    owner = owner_of_new_org(api)
    for _ in range(5):
        request_reset(api, owner["email"])
    smtp.inbox.wait_for(owner["email"], 3)
    assert mail_sql("select count(*) from outbox where recipient = %s", owner["email"]) == [(3,)]


def invite(api: TestClient, owner: dict[str, Any], role: str = "MEMBER") -> dict[str, Any]:
    body = {"email": unique_email("invitee"), "full_name": "Ivy Invitee", "role": role}
    response = api.post("/api/v1/users", json=body, headers=owner["headers"])
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def accept(api: TestClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return api.post("/api/v1/auth/invitation/accept", json={"token": token, "password": password})


def test_invitation_end_to_end(api: TestClient, smtp: Smtp, mail_sql: Any) -> None:
    owner = owner_of_new_org(api)
    user = invite(api, owner)
    assert user["status"] == "INVITED"
    assert login(api, user["email"], NEW_PASSWORD).status_code == 401, "cannot sign in yet"
    (message,) = smtp.inbox.wait_for(user["email"])
    assert owner["organization"]["name"] in message["Subject"]
    token = token_of(message, "accept-invitation")
    accepted = accept(api, token)
    assert accepted.status_code == 200, accepted.text
    me = api.get("/api/v1/auth/me", headers=bearer(accepted.json())).json()
    assert me["user"]["id"] == user["id"]
    assert me["user"]["status"] == "ACTIVE"
    assert accept(api, token, "another passphrase!").status_code == 401, "single use"
    assert login(api, user["email"], NEW_PASSWORD).status_code == 200
    actions = {
        a for (a,) in mail_sql("select action from audit_log where target_id = %s", user["id"])
    }
    assert actions == {"user.invited", "user.invitation_accepted"}


def test_resend_ends_the_earlier_token(api: TestClient, smtp: Smtp) -> None:
    owner = owner_of_new_org(api)
    user = invite(api, owner)
    first = token_of(smtp.inbox.wait_for(user["email"])[0], "accept-invitation")
    path = f"/api/v1/users/{user['id']}/invitation"
    assert api.post(path, headers=owner["headers"]).status_code == 202
    second = token_of(smtp.inbox.wait_for(user["email"], 2)[1], "accept-invitation")
    assert first != second
    assert accept(api, first).status_code == 401
    assert accept(api, second).status_code == 200
    assert api.post(path, headers=owner["headers"]).status_code == 404, "accepted: no invitation"


def test_revoke_ends_the_invitation_and_frees_the_email(api: TestClient, smtp: Smtp) -> None:
    owner = owner_of_new_org(api)
    user = invite(api, owner)
    token = token_of(smtp.inbox.wait_for(user["email"])[0], "accept-invitation")
    path = f"/api/v1/users/{user['id']}/invitation"
    assert api.delete(path, headers=owner["headers"]).status_code == 204
    assert accept(api, token).status_code == 401
    assert api.get(f"/api/v1/users/{user['id']}", headers=owner["headers"]).status_code == 404
    assert api.delete(path, headers=owner["headers"]).status_code == 404
    again = api.post(
        "/api/v1/users",
        json={"email": user["email"], "full_name": "Ivy Again", "role": "MEMBER"},
        headers=owner["headers"],
    )
    assert again.status_code == 201


def test_expired_invitations_and_wrong_tokens_are_401(
    api: TestClient, smtp: Smtp, mail_sql: Any
) -> None:
    owner = owner_of_new_org(api)
    user = invite(api, owner)
    token = token_of(smtp.inbox.wait_for(user["email"])[0], "accept-invitation")
    assert accept(api, token[:-2] + "xx").status_code == 401
    mail_sql(
        "update account_tokens set created_at = now() - interval '8 days',"
        " expires_at = now() - interval '1 day' where user_id = %s",
        user["id"],
    )
    assert accept(api, token).status_code == 401


def test_invitations_follow_the_role_rules_and_another_tenant_is_404(
    api: TestClient, smtp: Smtp
) -> None:
    owner = owner_of_new_org(api)
    admin = invite(api, owner, "ADMIN")
    admin_tokens = accept(
        api, token_of(smtp.inbox.wait_for(admin["email"])[0], "accept-invitation")
    ).json()
    invited_owner = invite(api, owner, "OWNER")
    path = f"/api/v1/users/{invited_owner['id']}/invitation"
    assert api.post(path, headers=bearer(admin_tokens)).status_code == 403
    outsider = owner_of_new_org(api)
    assert api.post(path, headers=outsider["headers"]).status_code == 404
    assert api.delete(path, headers=outsider["headers"]).status_code == 404


def test_an_invited_user_is_activated_only_by_accepting(api: TestClient, smtp: Smtp) -> None:
    owner = owner_of_new_org(api)
    user = invite(api, owner)
    response = api.patch(
        f"/api/v1/users/{user['id']}", json={"status": "ACTIVE"}, headers=owner["headers"]
    )
    assert response.status_code == 409
    smtp.inbox.wait_for(user["email"])


def test_smtp_down_delays_mail_and_loses_none_with_two_workers(
    api: TestClient, smtp: Smtp, mail_settings: Settings, mail_sql: Any
) -> None:
    owner = owner_of_new_org(api)
    smtp.stop()
    try:
        with serving(mail_settings):  # a second application: a second worker
            user = invite(api, owner)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                (failed,) = mail_sql(
                    "select attempts > 0 and last_error is not null from outbox"
                    " where recipient = %s",
                    user["email"],
                )[0]
                if failed:
                    break
                time.sleep(0.05)
            assert failed, "a worker tried while SMTP was down"
            assert (
                api.get(f"/api/v1/users/{user['id']}", headers=owner["headers"]).json()["status"]
                == "INVITED"
            ), "the action succeeded"
            smtp.inbox.delay_s = 1.0
            smtp.start()
            smtp.inbox.wait_for(user["email"])
            # Recorded as sent; both workers keep polling meanwhile (several rounds each at a
            # 50 ms interval) and neither sends it again.
            deadline = time.monotonic() + 30
            sent = ("pending",)
            while sent != ("sent",) and time.monotonic() < deadline:
                (sent,) = mail_sql("select status from outbox where recipient = %s", user["email"])
                time.sleep(0.05)
            time.sleep(0.5)
    finally:
        smtp.inbox.delay_s = 0.0
        smtp.stop()
        smtp.start()
    assert sent == ("sent",)
    assert len(smtp.inbox.to(user["email"])) == 1, "exactly once"
    token = token_of(smtp.inbox.to(user["email"])[0], "accept-invitation")
    assert accept(api, token).status_code == 200
