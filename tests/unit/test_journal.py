from __future__ import annotations

from emulator.journal import MASK, MAX_BODY_BYTES, Journal, mask, parse_body


def record(journal: Journal, raw: bytes, *, api_key: str = "KEY1", path: str = "/v2/calls") -> dict:
    entry = journal.record(
        at="2026-01-01T00:00:00.000000Z",
        method="POST",
        path=path,
        query="",
        raw_body=raw,
        status=200,
        deduplicated=False,
        duration_ms=1.23456,
        api_key=api_key,
    )
    return entry.to_json()


def test_secret_fields_are_masked_at_any_depth():
    body = {
        "stream_auth_token": "s3cret",
        "custom_headers": [{"name": "x", "value": "y"}],
        "nested": {"sip_auth_password": "pw", "list": [{"stream_auth_token": None}]},
    }
    assert mask(body) == {
        "stream_auth_token": MASK,
        "custom_headers": [{"name": "x", "value": "y"}],
        "nested": {"sip_auth_password": MASK, "list": [{"stream_auth_token": MASK}]},
    }


def test_the_api_key_is_masked_wherever_a_body_or_path_repeats_it():
    journal = Journal()
    entry = record(journal, b'{"client_state": "KEY1", "note": "key KEY1 here"}', path="/v2/calls/KEY1")
    assert entry["body"] == {"client_state": MASK, "note": f"key {MASK} here"}
    assert entry["path"] == f"/v2/calls/{MASK}"


def test_bodies_are_kept_as_json_text_or_nothing():
    assert parse_body(b"") is None and parse_body(b"  \n") is None
    assert parse_body(b'{"a": 1}') == {"a": 1}
    assert parse_body(b"{not json") == "{not json"
    assert parse_body(b"\xff\xfe") == "\ufffd\ufffd"
    assert parse_body(b" " * (MAX_BODY_BYTES + 1) + b"1").startswith("<")


def test_the_journal_keeps_the_latest_entries_oldest_first():
    journal = Journal(capacity=3)
    for n in range(5):
        record(journal, f'{{"n": {n}}}'.encode())
    assert [entry.body["n"] for entry in journal] == [2, 3, 4]
    assert next(iter(journal)).duration_ms == 1.235
    journal.clear()
    assert len(journal) == 0
