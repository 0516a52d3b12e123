"""Two legs: transfer dials a scenario callee and bridges it; bridge joins two calls; the legs hear each other
(on the streams and in the recordings), and when one leaves, the other does what its bridge said."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import soundfile

from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER, AGENT, BUSY = "+13125550111", "+13125550122", "+13125550133", "+13125550144"
SUPERVISOR = "+13125550155"

# The caller waits for whoever talks to it (the agent, once bridged), then answers with a 500 Hz tone.
CALLER_SCENARIO = """at_end: stay
inbound:
  - wait_for: {event: app_audio_end, silence_ms: 300, timeout_ms: 20000}
  - tone: {frequency: 500, ms: 600}
"""
# The agent picks up after 200 ms and talks first: a 1200 Hz tone.
AGENT_SCENARIO = """callee: {ring_ms: 200}
at_end: stay
inbound:
  - silence: {ms: 200}
  - tone: {frequency: 1200, ms: 600}
"""


def settings(tmp_path, **changes):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "caller.yaml").write_text(CALLER_SCENARIO)
    (folder / "agent.yaml").write_text(AGENT_SCENARIO)
    (folder / "busy.yaml").write_text("callee: {outcome: busy, ring_ms: 100}\ninbound:\n  - silence: {ms: 100}\n")
    (folder / "supervisor.yaml").write_text(
        "callee: {ring_ms: 100}\nat_end: stay\ninbound:\n  - silence: {ms: 200}\n  - tone: {frequency: 2000, ms: 500}\n"
    )
    (tmp_path / "map.yaml").write_text(f'"{AGENT}": agent\n"{BUSY}": busy\n"{SUPERVISOR}": supervisor\n')
    return emulator_settings(scenario_dir=folder, scenario_map=tmp_path / "map.yaml", **changes)


def kinds(hooks: WebhookReceiver, call_id: str | None = None) -> list[str]:
    return [
        r.event_type
        for r in hooks.requests
        if call_id is None or r.json["data"]["payload"]["call_control_id"] == call_id
    ]


def payload(hooks: WebhookReceiver, event_type: str, call_id: str | None = None) -> dict:
    return next(
        r.json["data"]["payload"]
        for r in hooks.requests
        if r.event_type == event_type and call_id in (None, r.json["data"]["payload"]["call_control_id"])
    )


def tone_energy(pcm: np.ndarray, frequency: float, rate: int = 8000) -> float:
    """The share of the signal's energy within 40 Hz of ``frequency`` (0 for no signal yet)."""
    if len(pcm) == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    return float(spectrum[np.abs(freqs - frequency) < 40].sum() / max(spectrum.sum(), 1e-9))


def voiced_ms(pcm: np.ndarray) -> int:
    """How many ms of ``pcm`` (8 kHz) are 20 ms frames with sound in them."""
    frames = pcm[: len(pcm) // 160 * 160].astype(np.float64).reshape(-1, 160)
    return int((np.sqrt((frames**2).mean(axis=1)) > 1000).sum()) * 20  # a tone, well above any background noise


def track_pcm(conn, track: str) -> np.ndarray:
    ulaw = b"".join(base64.b64decode(m["media"]["payload"]) for m in conn.of("media") if m["media"]["track"] == track)
    return soundfile.read(io.BytesIO(ulaw), samplerate=8000, channels=1, format="RAW", subtype="ULAW", dtype="int16")[0]


async def incoming(client: httpx.AsyncClient, scenario: str = "caller") -> str:
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": scenario})
    return created.json()["data"]["call_control_id"]


async def test_a_warm_transfer_dials_the_agent_bridges_it_and_each_side_hears_the_other(tmp_path):
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(settings(tmp_path, webhook_url=hooks.url, speed=2)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                caller = await incoming(c)
                answer = {"stream_url": target.url, "stream_track": "both_tracks"}
                assert (await c.post(f"/v2/calls/{caller}/actions/answer", json=answer)).status_code == 200
                body = {
                    "to": AGENT,
                    "target_leg_client_state": "YWdlbnQ=",
                    "record": "record-from-answer",
                    "record_format": "wav",
                    "client_state": "Y2FsbGVy",
                }
                assert (await c.post(f"/v2/calls/{caller}/actions/transfer", json=body)).json() == {
                    "data": {"result": "ok"}
                }
                await hooks.wait_until(lambda: kinds(hooks).count("call.bridged") == 2, seconds=10)
                agent = next(
                    r.json["data"]["payload"]["call_control_id"]
                    for r in hooks.requests
                    if r.event_type == "call.initiated" and r.json["data"]["payload"]["call_control_id"] != caller
                )
                conn = target.connections[0]
                # The agent talks, the caller answers: both tones cross the bridge before the app hangs up. The
                # caller's whole tone (600 ms) is sent first: hung up at its first frames, the agent's leg, a tick or
                # two behind on a busy machine, could end before hearing any of it.
                await target.wait_for(lambda: voiced_ms(track_pcm(conn, "inbound")) >= 600, seconds=15)
                await c.post(f"/v2/calls/{caller}/actions/hangup", json={})
                await hooks.wait_until(lambda: "call.recording.saved" in kinds(hooks, agent), seconds=10)
                saved = payload(hooks, "call.recording.saved", agent)
                wav = (await c.get(saved["recording_urls"]["wav"])).content
    assert kinds(hooks, agent)[:2] == ["call.initiated", "call.answered"]
    order = kinds(hooks)
    assert order.index("call.answered", order.index("call.initiated", 1)) < order.index("call.bridged")
    initiated, bridged = payload(hooks, "call.initiated", agent), payload(hooks, "call.bridged", agent)
    assert initiated["to"] == AGENT and initiated["from"] == APP_NUMBER and initiated["direction"] == "outgoing"
    assert (
        bridged["client_state"] == "YWdlbnQ=" and payload(hooks, "call.bridged", caller)["client_state"] == "Y2FsbGVy"
    )
    assert bridged["call_session_id"] == payload(hooks, "call.bridged", caller)["call_session_id"]
    # The app hung up the caller: the agent's leg hangs up with it (no park_after_unbridge).
    assert payload(hooks, "call.hangup", agent)["hangup_source"] == "unknown"
    # The caller's stream: its own 500 Hz tone inbound, the agent's 1200 Hz tone on the outbound track.
    assert tone_energy(track_pcm(conn, "outbound"), 1200) > 0.5
    assert tone_energy(track_pcm(conn, "inbound"), 500) > 0.5
    # The agent's recording (record-from-answer): the agent's tone on its first channel, the caller's on the second.
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="int16")
    assert samples.shape[1] == 2
    assert tone_energy(samples[:, 0], 1200, rate) > 0.5 and tone_energy(samples[:, 1], 500, rate) > 0.5


async def test_a_transfer_to_a_busy_number_hangs_up_the_new_leg_and_the_call_goes_on(tmp_path):
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(settings(tmp_path, webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                caller = await incoming(c)
                await c.post(f"/v2/calls/{caller}/actions/answer", json={})
                assert (await c.post(f"/v2/calls/{caller}/actions/transfer", json={"to": BUSY})).status_code == 200
                await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=10)
                leg = payload(hooks, "call.hangup")
                assert leg["call_control_id"] != caller and leg["hangup_cause"] == "user_busy"
                speak = {"payload": "Sorry, nobody is free.", "voice": "male"}
                assert (await c.post(f"/v2/calls/{caller}/actions/speak", json=speak)).status_code == 200
                bad = await c.post(f"/v2/calls/{caller}/actions/transfer", json={"to": "12345"})
                assert bad.status_code == 422 and bad.json()["errors"][0]["source"] == {"pointer": "/to"}
    assert "call.bridged" not in kinds(hooks)


async def test_bridge_joins_two_calls_and_park_after_unbridge_keeps_one_up_when_the_other_leaves(tmp_path):
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(settings(tmp_path, webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                first, second = await incoming(c, "stay-on-line"), await incoming(c, "stay-on-line")
                await c.post(f"/v2/calls/{first}/actions/answer", json={})
                # The second call is still parked: bridging it connects it (no call.answered).
                body = {"call_control_id": second, "park_after_unbridge": "self"}
                assert (await c.post(f"/v2/calls/{first}/actions/bridge", json=body)).status_code == 200
                await hooks.wait_until(lambda: kinds(hooks).count("call.bridged") == 2, seconds=5)
                shown = (await c.get(f"/_emulator/calls/{first}")).json()["data"]
                assert shown["bridged_to"] == second and shown["unbridge"] == "park"
                await c.post(f"/v2/calls/{second}/actions/hangup", json={})
                await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=5)
                # Parked: the first call is still up, unbridged, and takes commands.
                assert (await c.get(f"/v2/calls/{first}")).json()["data"]["is_alive"] is True
                assert (await c.get(f"/_emulator/calls/{first}")).json()["data"]["bridged_to"] is None
                assert (await c.post(f"/v2/calls/{first}/actions/hangup", json={})).status_code == 200
    assert "call.answered" not in kinds(hooks, second)
    assert kinds(hooks, second)[-2:] == ["call.bridged", "call.hangup"]


async def test_bridge_refuses_itself_an_ended_call_and_a_missing_target_with_a_pointer(tmp_path):
    async with run_emulator(settings(tmp_path)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            first, second = await incoming(c, "stay-on-line"), await incoming(c, "stay-on-line")
            await c.post(f"/v2/calls/{second}/actions/reject", json={"cause": "USER_BUSY"})
            actions = f"/v2/calls/{first}/actions"
            cases = [
                ({"call_control_id": first}, "10015", "/call_control_id"),
                ({"call_control_id": second}, "90018", "/call_control_id"),
                ({}, "10004", "/call_control_id"),
                ({"call_control_id": second, "queue": "support"}, "10015", "/queue"),
                ({"video_room_id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"}, "10015", "/video_room_id"),
                ({"call_control_id": 5}, "10015", "/call_control_id"),
            ]
            for body, code, pointer in cases:
                answer = await c.post(f"{actions}/bridge", json=body)
                error = answer.json()["errors"][0]
                assert (answer.status_code, error["code"], error["source"]) == (422, code, {"pointer": pointer}), body


async def test_dial_with_link_to_and_bridge_on_answer_bridges_the_new_leg_to_a_parked_caller(tmp_path):
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(settings(tmp_path, webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                caller = await incoming(c)
                body = {
                    "connection_id": "1234",
                    "to": AGENT,
                    "from": "+13125550199",
                    "link_to": caller,
                    "bridge_intent": True,
                    "bridge_on_answer": True,
                }
                agent = (await c.post("/v2/calls", json=body)).json()["data"]["call_control_id"]
                await hooks.wait_until(lambda: kinds(hooks).count("call.bridged") == 2, seconds=10)
                await c.post(f"/v2/calls/{agent}/actions/hangup", json={})
                await hooks.wait_until(lambda: kinds(hooks).count("call.hangup") == 2, seconds=5)
    initiated = payload(hooks, "call.initiated", agent)
    assert initiated["from"] == CALLER  # bridge_intent: the linked call's caller id
    assert initiated["call_session_id"] == payload(hooks, "call.initiated", caller)["call_session_id"]
    assert payload(hooks, "call.hangup", caller)["hangup_source"] == "unknown"  # its leg left: it hangs up too


async def test_a_whispering_supervisor_is_heard_by_the_supervised_call_and_hears_it(tmp_path):
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(settings(tmp_path, webhook_url=hooks.url, speed=2)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                caller = await incoming(c)
                answer = {"stream_url": target.url, "stream_track": "both_tracks"}
                await c.post(f"/v2/calls/{caller}/actions/answer", json=answer)
                body = {
                    "connection_id": "1234",
                    "to": SUPERVISOR,
                    "from": APP_NUMBER,
                    "supervise_call_control_id": caller,
                    "supervisor_role": "whisper",
                    "stream_url": target.url,
                    "stream_track": "both_tracks",
                }
                assert (await c.post("/v2/calls", json=body)).status_code == 200
                heard = await target.wait_connection(1, seconds=10)
                # The supervisor whispers (2000 Hz); the caller answers it (500 Hz), which the supervisor hears.
                await target.wait_for(lambda: tone_energy(track_pcm(heard, "outbound")[-4000:], 500) > 0.5, seconds=15)
                await c.post(f"/v2/calls/{caller}/actions/hangup", json={})
    assert tone_energy(track_pcm(target.connections[0], "outbound"), 2000) > 0.5
    assert "call.bridged" not in kinds(hooks)


async def test_bridge_with_a_queue_takes_the_caller_at_its_head(tmp_path):
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(settings(tmp_path, webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                first, second, agent = [await incoming(c, "stay-on-line") for _ in range(3)]
                for call in (first, second, agent):
                    await c.post(f"/v2/calls/{call}/actions/answer", json={})
                for call in (first, second):
                    await c.post(f"/v2/calls/{call}/actions/enqueue", json={"queue_name": "support"})
                assert (await c.post(f"/v2/calls/{agent}/actions/bridge", json={"queue": "support"})).status_code == 200
                await hooks.wait_until(lambda: kinds(hooks).count("call.bridged") == 2, seconds=5)
                waiting = (await c.get("/v2/queues/support/calls")).json()["data"]
                assert [(w["call_control_id"], w["queue_position"]) for w in waiting] == [(second, 1)]
                await c.post(f"/v2/calls/{second}/actions/leave_queue", json={})
                empty = await c.post(f"/v2/calls/{agent}/actions/bridge", json={"queue": "support"})
                assert empty.status_code == 422 and empty.json()["errors"][0]["source"] == {"pointer": "/queue"}
                for call in (first, second, agent):
                    await c.post(f"/v2/calls/{call}/actions/hangup", json={})
    dequeued = payload(hooks, "call.dequeued", first)
    assert dequeued["reason"] == "bridged" and dequeued["queue_position"] == 1
    assert {
        p["call_control_id"] for p in (payload(hooks, "call.bridged", first), payload(hooks, "call.bridged", agent))
    } == {first, agent}
