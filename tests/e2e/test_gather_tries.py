"""maximum_tries: a try that times out or gets keys that are not valid starts again (the invalid prompt first),
and call.gather.ended comes once."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from emulator.media import codecs
from tests.e2e.test_call_audio import tone_wav
from tests.receivers import WebhookReceiver
from tests.servers import Connection, WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
# Presses 9 (not valid) after the first prompt, then 2 and # after the invalid prompt and the prompt again.
WRONG_THEN_RIGHT = (
    "at_end: stay\ninbound:\n"
    "  - wait_for: {event: app_audio_end, silence_ms: 200, timeout_ms: 20000, on_timeout: hangup}\n"
    "  - dtmf: {digits: '9', ms: 80}\n"
    "  - wait_for: {event: app_audio_end, silence_ms: 200, timeout_ms: 20000, on_timeout: hangup}\n"
    "  - dtmf: {digits: '2#', ms: 80, gap_ms: 80}\n"
)


def kinds(hooks: WebhookReceiver) -> list[str]:
    return [r.event_type for r in hooks.requests]


async def answered(client: httpx.AsyncClient, scenario: str, body: dict | None = None) -> str:
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": scenario})
    actions = f"/v2/calls/{created.json()['data']['call_control_id']}/actions"
    assert (await client.post(f"{actions}/answer", json=body or {})).status_code == 200
    return actions


async def test_keys_that_are_not_valid_get_the_invalid_prompt_and_another_try(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "menu.wav").write_bytes(tone_wav(440, 0.6))
    (tmp_path / "media" / "invalid.wav").write_bytes(tone_wav(1000, 0.4))
    (tmp_path / "caller.yaml").write_text(WRONG_THEN_RIGHT)
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(speed=4, webhook_url=hooks.url, media_dir=tmp_path / "media")
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            actions = await answered(
                c, str(tmp_path / "caller.yaml"), {"stream_url": target.url, "stream_track": "both_tracks"}
            )
            body = {"media_name": "menu.wav", "invalid_media_name": "invalid.wav", "valid_digits": "123",
                    "maximum_tries": 2}  # fmt: skip
            assert (await c.post(f"{actions}/gather_using_audio", json=body)).status_code == 200
            await hooks.wait_until(lambda: "call.gather.ended" in kinds(hooks), seconds=15)
            await c.post(f"{actions}/hangup", json={})
            conn = await target.wait_closed(0)
    (ended,) = [r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.gather.ended"]
    assert (ended["digits"], ended["status"]) == ("2", "valid")
    played = [
        r.json["data"]["payload"]["media_name"] for r in hooks.requests if r.event_type == "call.playback.started"
    ]
    assert played == ["menu.wav", "invalid.wav", "menu.wav"]
    # The outbound track: 440 Hz, then (after the 9) 1 kHz, then 440 Hz again.
    chunks = outbound(conn, 800)  # 100 ms each
    tones = []
    for chunk in chunks:
        if np.sqrt(np.mean(chunk**2)) > 1000:
            spectrum = np.abs(np.fft.rfft(chunk))
            tone = round(float(np.fft.rfftfreq(800, 1 / 8000)[np.argmax(spectrum)]), -1)
            if not tones or tones[-1] != tone:
                tones.append(tone)
    assert tones == [440, 1000, 440]


def outbound(conn: Connection, samples: int) -> np.ndarray:
    frames = [m for m in conn.of("media") if m["media"]["track"] == "outbound"]
    pcm = codecs.decode_ulaw(b"".join(base64.b64decode(m["media"]["payload"]) for m in frames)).astype(np.float64)
    return pcm[: len(pcm) // samples * samples].reshape(-1, samples)


async def test_a_caller_who_never_presses_hears_the_prompt_maximum_tries_times_then_timeout():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(speed=8, webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                actions = await answered(c, "stay-on-line", {"stream_url": target.url, "stream_track": "both_tracks"})
                body = {"payload": "Press one.", "voice": "male", "initial_timeout_millis": 500}
                assert (await c.post(f"{actions}/gather_using_speak", json=body)).status_code == 200
                await hooks.wait_until(lambda: "call.gather.ended" in kinds(hooks), seconds=15)
                await c.post(f"{actions}/hangup", json={})
                conn = await target.wait_closed(0)
    (ended,) = [r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.gather.ended"]
    assert (ended["digits"], ended["status"]) == ("", "timeout")
    loud = np.sqrt(np.mean(outbound(conn, 160) ** 2, axis=1)) > 300
    # Three prompts, each followed by the 500 ms initial timeout (25 quiet frames) before the next.
    bursts, quiet = 0, 99
    for frame_is_loud in loud:
        if frame_is_loud and quiet >= 20:
            bursts += 1
        quiet = 0 if frame_is_loud else quiet + 1
    assert bursts == 3
