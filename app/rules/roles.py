"""Who may do what: OWNER > ADMIN > MEMBER > GUEST, and the rules for managing users."""

from __future__ import annotations

from app.problems import forbidden

RANK = {"GUEST": 0, "MEMBER": 1, "ADMIN": 2, "OWNER": 3}


def at_least(role: str, minimum: str) -> bool:
    return RANK[role] >= RANK[minimum]


def require(role: str, minimum: str, action: str) -> None:
    if not at_least(role, minimum):
        raise forbidden(f"Only {minimum} or above may {action}.")


def require_can_manage(actor_role: str, target_role: str) -> None:
    """OWNERs manage everyone; ADMINs manage the users below them; nobody else manages users."""
    require(actor_role, "ADMIN", "manage users")
    if actor_role != "OWNER" and RANK[target_role] >= RANK[actor_role]:
        raise forbidden(f"A {actor_role} cannot manage a {target_role}.")


def require_can_assign(actor_role: str, role: str) -> None:
    """OWNERs grant any role; ADMINs only the roles below their own (MEMBER, GUEST)."""
    if actor_role != "OWNER" and RANK[role] >= RANK[actor_role]:
        raise forbidden(f"A {actor_role} cannot grant the {role} role.")
