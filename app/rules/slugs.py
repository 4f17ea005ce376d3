"""Organization slugs: lowercase, URL-safe, derived from the name."""

from __future__ import annotations

import re
import secrets
import unicodedata

MAX_LENGTH = 63


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:MAX_LENGTH].strip("-") or "org"


def with_suffix(slug: str) -> str:
    """A variant for when the plain slug is taken: 6 random characters appended."""
    suffix = secrets.token_hex(3)
    return f"{slug[: MAX_LENGTH - len(suffix) - 1].strip('-')}-{suffix}"
