"""JSON encoding of handler responses."""

import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from app.edge.responses import encode


def test_uuids_and_times_are_rfc3339_strings() -> None:
    row = {"id": uuid.UUID(int=1), "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)}
    assert json.loads(encode(row)) == {
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2026-01-02T03:04:05.000006+00:00",
    }


def test_integers_beyond_64_bits_in_metadata_are_written_exactly() -> None:
    big = 2**70 + 1
    body = {"id": uuid.UUID(int=2), "metadata": {"n": big, "neg": -big}}
    assert json.loads(encode(body)) == {
        "id": "00000000-0000-0000-0000-000000000002",
        "metadata": {"n": big, "neg": -big},
    }


def test_stored_json_is_embedded_as_is_and_never_mangled() -> None:
    stored = orjson.Fragment(b'{"n": 12345678901234567890123, "s": "x"}')
    assert json.loads(encode({"metadata": stored})) == {
        "metadata": {"n": 12345678901234567890123, "s": "x"}
    }
    with pytest.raises(TypeError):
        encode({"metadata": stored, "other": 2**70})
