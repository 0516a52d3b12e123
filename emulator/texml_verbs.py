"""The TeXML verbs that take more than one command or event: Gather, Record and Dial (``TexmlSession`` runs the
rest itself). Each is a function of the call's runner, split from ``texml_session.py`` to keep both readable."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from emulator.texml import commands
from emulator.texml.verbs import Dial, Document, Gather, Pause, Record
from emulator.timing import FRAME_MS

if TYPE_CHECKING:
    from emulator.texml_session import TexmlSession

RECORDING_GRACE = 5.0  # seconds a recording cut by the hang-up has to be saved before its callbacks are given up


class DocumentFailed(Exception):
    """The call's document cannot go on: why, as logged and kept on the call."""


class CallEnded(Exception):
    """The call hung up while a verb ran."""


async def gather(session: TexmlSession, verb: Gather) -> Document | None:
    ended: dict[str, Any] = {}
    for step in commands.gather(verb):
        if isinstance(step, Pause):
            await session.pause(step.length)
        else:
            ended = await session.perform(step)
    digits = str(ended.get("digits") or "")
    if not digits:  # no input: the document goes on with the next verb
        return None
    url = session.absolute(verb.action) if verb.action else session.document_url
    if url is None:  # an inline document and no action: nowhere to send the digits
        return None
    method = verb.method.value if verb.method is not None else session.source.voice_method
    return await session.fetch(url, method, commands.gather_params(digits), "in-progress")


async def record(session: TexmlSession, verb: Record) -> Document | None:
    try:
        saved = await session.perform(commands.record(verb))
    except CallEnded:  # the caller hung up mid-message, the usual voicemail: it is still saved, and told
        late = await _saved_after_the_end(session)
        if late is not None:
            await _recorded(session, verb, late)
        raise
    return await _recorded(session, verb, saved)


async def _saved_after_the_end(session: TexmlSession) -> dict[str, Any] | None:
    """The call.recording.saved that follows a hang-up mid-recording (within a few seconds), or None."""
    try:
        async with asyncio.timeout(RECORDING_GRACE):
            while True:
                event_type, payload = await session.events.get()
                if event_type == "call.recording.saved":
                    return payload
    except TimeoutError:
        return None


async def _recorded(session: TexmlSession, verb: Record, saved: dict[str, Any]) -> Document | None:
    params = commands.recording_params(saved, commands.recording_seconds(saved))
    status = "in-progress" if session.call.is_alive else "completed"
    if verb.recording_status_callback:
        url = session.absolute(verb.recording_status_callback)
        method = verb.recording_status_callback_method.value
        session.spawn(session.request(url, method, {**session.params(status), **params}, "recording"))
    if verb.action is None:
        return None
    return await session.fetch(session.absolute(verb.action), verb.method.value, params, status)


async def dial(session: TexmlSession, verb: Dial) -> Document | None:
    """``transfer`` to the first number, this call staying up when the bridge ends (``park_after_unbridge``);
    the new leg's events come here (``_LegEvents``), not to a webhook URL. Then ``action``, with how it went."""

    def relay() -> None:  # before the effects: the new leg's call.initiated comes here too
        if session.call.transferring is not None:
            session.call.transferring.texml = _LegEvents(session)

    session.command(commands.dial(verb, session.call.from_), prepare=relay)
    leg = session.call.transferring
    if leg is None:
        raise DocumentFailed(f"{session.verb}: transfer started no leg")
    answered = False
    while True:
        event_type, payload = await session.events.get()
        if event_type == "call.hangup":
            raise CallEnded
        if event_type == "leg:call.answered":
            answered = True
        elif event_type == "leg:call.hangup":
            break
    status = commands.final_status(answered, payload)
    seconds = round(leg.meter.ticks * FRAME_MS / 1000) if leg.meter is not None else 0  # media time
    if verb.action is None:
        return None
    params = {"DialCallStatus": status, "DialCallSid": leg.call_control_id, "DialCallDuration": str(seconds)}
    return await session.fetch(session.absolute(verb.action), verb.method.value, params, "in-progress")


class _LegEvents:
    """The leg a ``<Dial>`` rang: its events go to the call's runner, tagged ``leg:``, not to a webhook URL."""

    def __init__(self, session: TexmlSession) -> None:
        self.session = session

    def stop(self) -> None:
        pass  # the call's own runner is stopped with it

    def on_event(self, event_type: str, payload: dict[str, Any]) -> None:
        self.session.events.put_nowait((f"leg:{event_type}", payload))

    def as_json(self) -> dict[str, Any]:
        return {"dialed_by": self.session.call.call_control_id}
