"""ClipPlayer: gets the audio of the clips a call plays (speech, DTMF tones, audio files) and queues them.

A clip takes its place in the call's queue the moment its command is accepted, silent until its audio is ready,
so consecutive commands play in the order they came, however long each takes to render: espeak-ng runs in a
worker thread, an ``audio_url`` is fetched over HTTP(S) (kept for the next playback of the same URL when
``cache_audio`` allows), a ``media_name`` is read from ``--media-dir``. Audio that cannot be had ends its clip
at once: ``file_not_found`` (no such file, an HTTP error, an unreachable host) or ``failed`` (not WAV or MP3),
with ``status_detail`` saying why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import httpx

from emulator.calls.effects import ClipRequest
from emulator.media import clip_audio
from emulator.media.call_audio import CallAudio, Clip, ClipEvent
from emulator.media.clip_audio import ClipUnavailable
from emulator.scenarios.tts import SpeechCache

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], object]
Report = Callable[[Sequence[ClipEvent]], None]
_CACHE_FILES = 32  # fetched audio files kept, the most recent first
_MAX_FILE_BYTES = 50 * 2**20


class ClipPlayer:
    def __init__(self, spawn: Spawn, *, media_dir: Path | None = None) -> None:
        self.spawn = spawn
        self.media_dir = media_dir
        self.http: httpx.AsyncClient | None = None  # attached by the app with its HTTP client
        self._speech: SpeechCache | None = None  # espeak-ng's cache, made on first use
        self._files: OrderedDict[str, bytes] = OrderedDict()

    def play(self, audio: CallAudio, rate: int, request: ClipRequest, report: Report) -> Clip:
        """Queue the clip now and render its audio; ``report`` hears of clips that end before they play."""
        if request.stop is not None:
            report(audio.stop(request.stop, frozenset({"speak", "playback"})))
        clip = Clip(request.key, request.kind, None, request.heard_by_caller, request.loops, request.overlay)
        if request.kind == "playback":
            clip.details = {"overlay": request.overlay}
            if request.audio_url is not None:
                clip.details["media_url"] = request.audio_url
            if request.media_name is not None:
                clip.details["media_name"] = request.media_name
        if request.transcript:
            clip.details["transcript"] = request.transcript
        audio.add(clip)
        if request.kind == "dtmf":
            clip.details["digits"] = request.digits
            clip.pcm = clip_audio.dtmf_tones(request.digits, request.duration_ms, rate)
        elif request.kind == "beep":
            clip.pcm = clip_audio.beep(rate)
        elif request.kind in ("speak", "gather"):  # speech: speak, or gather_using_speak's prompt
            self.spawn(self._speak(clip, request, rate), f"speak-{request.key}")
        else:
            self.spawn(self._playback(audio, clip, request, rate, report), f"playback-{request.key}")
        return clip

    async def _speak(self, clip: Clip, request: ClipRequest, rate: int) -> None:
        if self._speech is None:
            self._speech = SpeechCache.from_env()
        cache = self._speech
        clip.pcm = await asyncio.to_thread(
            clip_audio.speech, cache, request.text, request.voice, request.language, request.ssml, rate
        )

    async def _playback(self, audio: CallAudio, clip: Clip, request: ClipRequest, rate: int, report: Report) -> None:
        try:
            data = await self._file(request)
            clip.pcm = await asyncio.to_thread(clip_audio.decode_file, data, rate)
        except ClipUnavailable as exc:
            log.warning("playback %s: %s (%s)", request.key, exc.status, exc.detail)
            clip.details["status_detail"] = exc.detail
            report(audio.remove(clip, exc.status))

    async def _file(self, request: ClipRequest) -> bytes:
        if request.content is not None:
            try:
                return base64.b64decode(request.content, validate=True)
            except (binascii.Error, ValueError):
                raise ClipUnavailable("failed", "playback_content is not base64.") from None
        if request.media_name is not None:
            return self._media_file(request.media_name)
        if request.audio_url is None:
            raise ClipUnavailable("failed", "No audio_url, media_name or playback_content was given.")
        url = request.audio_url
        cached = self._files.get(url) if request.cache else None  # cache_audio: false fetches it afresh
        if cached is not None:
            self._files.move_to_end(url)
            return cached
        data = await self._fetch(url)
        if request.cache:
            self._files[url] = data
            while len(self._files) > _CACHE_FILES:
                self._files.popitem(last=False)
        return data

    def _media_file(self, name: str) -> bytes:
        if self.media_dir is None:
            raise ClipUnavailable("file_not_found", f"No media named {name!r}: the emulator has no --media-dir.")
        folder = self.media_dir.resolve()
        path = (folder / name).resolve()
        if folder not in path.parents or not path.is_file():
            raise ClipUnavailable("file_not_found", f"No media named {name!r} in {self.media_dir}.")
        return path.read_bytes()

    async def _fetch(self, url: str) -> bytes:
        if self.http is None:
            raise ClipUnavailable("failed", "The emulator has no HTTP client to fetch audio_url with.")
        try:
            response = await self.http.get(url, follow_redirects=True)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # refused, unresolvable, a URL httpx refuses
            raise ClipUnavailable("file_not_found", f"{url} could not be fetched: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ClipUnavailable("file_not_found", f"{url} answered HTTP {response.status_code}.")
        if len(response.content) > _MAX_FILE_BYTES:
            raise ClipUnavailable("failed", f"{url} is larger than {_MAX_FILE_BYTES // 2**20} MB.")
        return response.content
