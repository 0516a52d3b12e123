"""The media workers' pure parts: batches on the pipe, cut anywhere, and how many workers a setting asks for."""

from __future__ import annotations

import pytest

from emulator.config import AUTO, ConfigError, Settings, count_or_auto
from emulator.media import workers
from emulator.media.worker_wire import MAX_BATCH_BYTES, Unpacker, WireError, pack, split


def test_batches_come_out_whole_however_the_pipe_cuts_the_bytes():
    batches = [
        [("send", "s1", ['{"event":"media"}', '{"event":"mark"}']), ("credit", "s1", 8)],
        [("received", "s2", b"\x00\xff binary"), ("closed", "s2", (1000, ""), (1000, ""), True, True)],
        [("open", "s3", "wss://example.test/x", {"k": "v"}, (None, False), 10.0, 10.0, 1 << 20)],
    ]
    data = b"".join(pack(batch) for batch in batches)
    for cut in (1, 3, 7, 64, len(data)):
        unpacker = Unpacker()
        out = []
        for i in range(0, len(data), cut):
            out += unpacker.feed(data[i : i + cut])
        assert out == batches, cut


def test_bytes_that_are_not_batches_are_refused_not_guessed_at():
    with pytest.raises(WireError, match="out of step"):
        Unpacker().feed((MAX_BATCH_BYTES + 1).to_bytes(4, "big"))
    with pytest.raises(WireError, match="does not unpickle"):
        Unpacker().feed(b"\x00\x00\x00\x03abc")
    with pytest.raises(WireError, match="not a list"):
        Unpacker().feed(pack({"not": "a list"}))  # type: ignore[arg-type]


def test_a_count_or_auto(monkeypatch):
    assert count_or_auto("auto") == count_or_auto(" AUTO ") == AUTO and count_or_auto("3") == 3
    with pytest.raises(ValueError, match="expected an integer"):
        count_or_auto("many")
    assert Settings.from_env({"TELNYX_EMULATOR_MEDIA_WORKERS": "auto"}).media_workers == AUTO
    with pytest.raises(ConfigError, match="media_workers: must be >= -1"):
        Settings(media_workers=-2)


def test_how_many_workers_each_setting_starts_and_which_streams_they_take(monkeypatch):
    tls = {"ca_file": None, "insecure_tls": False}
    assert workers.media_workers(0, **tls) is None
    fixed = workers.media_workers(3, **tls)
    assert fixed is not None and fixed.count == 3 and fixed.takes(0)  # every stream, from the first
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    assert workers.media_workers(AUTO, **tls) is None  # two cores: a worker would only compete with the main process
    monkeypatch.setattr(workers, "usable_cores", lambda: 16)
    auto = workers.media_workers(AUTO, **tls)
    assert auto is not None and auto.count == 14
    assert not auto.takes(workers.AUTO_AFTER_STREAMS - 1) and auto.takes(workers.AUTO_AFTER_STREAMS)


def test_what_a_worker_sends_is_cut_into_batches_of_a_few_mib_in_order():
    big = b"\x00" * (3 * 1024 * 1024)
    batch = [("acked", "s1", 3), ("received", "s1", big), ("received", "s2", big), ("received", "s1", "mark")]
    parts = split(batch, limit=4 * 1024 * 1024)
    assert parts == [batch[:2], batch[2:]]  # the second 3 MiB starts a new part; order is kept
    assert split([("received", "s", big * 3)], limit=1024) == [[("received", "s", big * 3)]]  # too big alone: alone
    assert split([]) == []


def test_usable_cores_are_those_the_process_may_run_on():
    assert 1 <= workers.usable_cores() <= (workers.os.cpu_count() or 1)
