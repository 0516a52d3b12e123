"""Legs that hear each other: one call's far end heard by another's, tick by tick. Pure: engines in, engines out.

A bridge joins two calls both ways; a supervisor may hear without being heard (``monitor``) or be heard by one
leg only (``whisper``). Each direction is one ``connect``: the speaker's engine pushes every voiced frame of its
caller into a playout queue of the listener's engine, which mixes it into what the listener's caller hears,
as it mixes a stream's app audio. So a leg's streams, recordings and forks carry the other leg's voice on their
outbound track, and its scripted caller's turn-taking hears the other leg talk as it hears an app::

    connect(agent, caller, speaker_key="leg:B", listener_key="leg:A")   # the caller hears the agent
    connect(caller, agent, speaker_key="leg:A", listener_key="leg:B")   # and the agent the caller
"""

from __future__ import annotations

from emulator.media.engine import CallMedia
from emulator.media.playout import PlayoutQueue
from emulator.media.ticks import AppAudio


def leg_key(call_control_id: str) -> str:
    """The key of a leg's voice among another engine's sources (never a stream id: those are UUIDs)."""
    return f"leg:{call_control_id}"


def connect(speaker: CallMedia, listener: CallMedia, *, speaker_key: str, listener_key: str) -> None:
    """From the next tick, ``listener``'s caller hears ``speaker``'s caller."""
    if speaker_key in listener.legs:
        return
    source = AppAudio(PlayoutQueue(listener.frame_samples, keep_played=False), heard_by_caller=True)
    listener.add_app_audio(speaker_key, source)
    listener.legs.add(speaker_key)
    speaker.hearers[listener_key] = source.playout


def disconnect(speaker: CallMedia | None, listener: CallMedia | None, *, speaker_key: str, listener_key: str) -> None:
    """``listener``'s caller no longer hears ``speaker``'s (what was still queued is dropped). Either may be
    gone already (its call ended): the other is cleaned up alone."""
    if speaker is not None:
        speaker.hearers.pop(listener_key, None)
    if listener is not None:
        listener.legs.discard(speaker_key)
        source = listener.remove_app_audio(speaker_key)
        if source is not None:
            source.playout.finish()
