"""fork_start / fork_stop: the call's audio arrives on real UDP sockets as RTP (RFC 3550), 20 ms per packet,
and decodes to what the call received (rx) and sent (tx)."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import httpx
import numpy as np
import pytest

from emulator.media import codecs, rtp
from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
TONE_CALLER = "at_end: stay\ninbound:\n  - tone: {frequency: 1000, ms: 3000}\n"


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[rtp.RtpPacket] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.packets.append(rtp.parse(data))


async def udp_socket() -> tuple[asyncio.DatagramTransport, Collector, int]:
    transport, collector = await asyncio.get_running_loop().create_datagram_endpoint(
        Collector, local_addr=("127.0.0.1", 0)
    )
    return transport, collector, transport.get_extra_info("sockname")[1]


def peaks(pcm: np.ndarray, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    return sorted(float(f) for f in freqs[np.argsort(spectrum)[-count:]])


def dtmf_pair(pcm: np.ndarray) -> tuple[float, float]:
    """The strongest frequency in DTMF's low group and in its high group (one peak each, never two of one tone)."""
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    low, high = (freqs > 600) & (freqs < 1000), (freqs > 1150) & (freqs < 1700)
    return float(freqs[low][np.argmax(spectrum[low])]), float(freqs[high][np.argmax(spectrum[high])])


def loud(packets: list[rtp.RtpPacket]) -> list[int]:
    """Indexes of the packets that carry sound (the app sends nothing but its digit; the rest is silence)."""
    return [i for i, p in enumerate(packets) if np.abs(codecs.decode_ulaw(p.payload)).max() > 100]


def digit_sent(packets: list[rtp.RtpPacket]) -> bool:
    sound = loud(packets)
    return len(sound) >= 20 and sound[-1] < len(packets) - 1


def kinds(hooks: WebhookReceiver) -> list[str]:
    return [r.event_type for r in hooks.requests]


async def test_the_callers_and_the_calls_audio_arrive_as_rtp_on_udp(tmp_path):
    (tmp_path / "tone.yaml").write_text(TONE_CALLER)
    rx_transport, rx, rx_port = await udp_socket()
    tx_transport, tx, tx_port = await udp_socket()
    try:
        async with WebhookReceiver().running() as hooks:
            async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=4)) as emulator:
                async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                    created = await c.post(
                        "/_emulator/calls",
                        json={"from": CALLER, "to": APP_NUMBER, "scenario": str(tmp_path / "tone.yaml")},
                    )
                    actions = f"/v2/calls/{created.json()['data']['call_control_id']}/actions"
                    await c.post(f"{actions}/answer", json={})
                    body = {"rx": f"udp:127.0.0.1:{rx_port}", "tx": f"udp:127.0.0.1:{tx_port}", "client_state": "Zms="}
                    assert (await c.post(f"{actions}/fork_start", json=body)).json() == {"data": {"result": "ok"}}
                    again = await c.post(f"{actions}/fork_start", json=body)
                    assert again.status_code == 422 and again.json()["errors"][0]["title"] == "Already forking"
                    await c.post(f"{actions}/send_dtmf", json={"digits": "5", "duration_millis": 400})
                    # Until the fork has sent the whole digit and silence after it, and a second of the caller. The
                    # digit starts whenever send_dtmf lands: on a busy machine at speed 4, seconds of media later.
                    for _ in range(1000):
                        if len(rx.packets) >= 50 and digit_sent(tx.packets):
                            break
                        await asyncio.sleep(0.01)  # a bounded poll: UDP has nothing to await
                    assert len(rx.packets) >= 50 and digit_sent(tx.packets), (len(rx.packets), loud(tx.packets))
                    assert (await c.post(f"{actions}/fork_stop", json={})).status_code == 200
                    assert (await c.post(f"{actions}/fork_stop", json={})).json()["errors"][0]["title"] == "Not forking"
                    await hooks.wait_until(lambda: "call.fork.stopped" in kinds(hooks))
                    await c.post(f"{actions}/hangup", json={})
    finally:
        rx_transport.close()
        tx_transport.close()
    for packets in (rx.packets, tx.packets):
        assert packets[0].marker and not any(p.marker for p in packets[1:])
        assert {p.payload_type for p in packets} == {0} and {len(p.payload) for p in packets} == {160}  # PCMU, 20 ms
        assert [p.sequence for p in packets] == list(range(packets[0].sequence, packets[0].sequence + len(packets)))
        assert all(b.timestamp - a.timestamp == 160 for a, b in pairwise(packets))
        assert len({p.ssrc for p in packets}) == 1
    assert rx.packets[0].ssrc != tx.packets[0].ssrc
    heard = codecs.decode_ulaw(b"".join(p.payload for p in rx.packets[:50]))
    assert abs(peaks(heard, 1)[0] - 1000) < 15  # the caller's tone
    digit = loud(tx.packets)
    assert len(digit) == 20 and digit == list(range(digit[0], digit[0] + 20))  # 400 ms, unbroken
    low, high = dtmf_pair(codecs.decode_ulaw(b"".join(tx.packets[i].payload for i in digit)))
    assert abs(low - 770) < 10 and abs(high - 1336) < 10  # DTMF 5
    started = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.fork.started")
    assert started["stream_type"] == "decrypted" and started["client_state"] == "Zms="
    assert kinds(hooks).index("call.fork.started") < kinds(hooks).index("call.fork.stopped")


async def test_a_fork_needs_a_target_in_udp_ip_port_form_and_ends_with_the_call():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                actions = "/v2/calls/v3:fork/actions"
                none = await c.post(f"{actions}/fork_start", json={})
                assert none.status_code == 422 and none.json()["errors"][0]["source"] == {"pointer": "/rx"}
                bad = await c.post(f"{actions}/fork_start", json={"tx": "tcp:10.0.0.1:9"})
                assert bad.json()["errors"][0]["source"] == {"pointer": "/tx"}
                assert (await c.post(f"{actions}/fork_start", json={"rx": "udp:127.0.0.1:9"})).status_code == 200
                await c.post(f"{actions}/hangup", json={})
                await hooks.wait_until(lambda: "call.fork.stopped" in kinds(hooks))
    assert kinds(hooks).index("call.hangup") < kinds(hooks).index("call.fork.stopped")
