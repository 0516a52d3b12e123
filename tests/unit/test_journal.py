from __future__ import annotations

from emulator.calls.journal import MASK, MAX_BODY_BYTES, Journal, mask, parse_body


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
    key = "KEY0123456789ABCDEF"
    body = f'{{"client_state": "{key}", "note": "key {key} here"}}'.encode()
    entry = record(journal, body, api_key=key, path=f"/v2/calls/{key}")
    assert entry["body"] == {"client_state": MASK, "note": f"key {MASK} here"}
    assert entry["path"] == f"/v2/calls/{MASK}"


def test_a_short_test_key_is_masked_only_as_a_whole_value_so_paths_stay_readable():
    entry = record(
        Journal(), b'{"client_state": "a", "note": "a call"}', api_key="a", path="/v2/calls/v3:abc/actions/answer"
    )
    assert entry["path"] == "/v2/calls/v3:abc/actions/answer"
    assert entry["body"] == {"client_state": MASK, "note": "a call"}


def test_a_body_nested_past_the_parsers_depth_is_kept_as_a_note_not_an_error():
    deep = b"[" * 5000 + b"]" * 5000
    assert record(Journal(), deep)["body"].startswith("[[[")
    just_parseable = b"[" * 950 + b"]" * 950
    assert record(Journal(), just_parseable)["body"] is not None


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
