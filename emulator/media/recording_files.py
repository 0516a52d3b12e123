"""RecordingFiles: the files of ended call recordings, encoded off the loop and served by the control plane.

``GET /_emulator/call-recordings/{recording_id}.{wav|mp3}`` answers without an API key, as Telnyx's recording
links work without one; the newest ``keep`` files are kept in memory, and written to ``--recordings-dir`` too
when it is set.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from pathlib import Path

from emulator.media.call_recorder import CallRecording

log = logging.getLogger(__name__)

MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
URL_PREFIX = "/_emulator/call-recordings/"


class RecordingFiles:
    def __init__(self, keep: int = 50, directory: Path | None = None) -> None:
        self.keep = keep
        self.directory = directory
        self._files: OrderedDict[str, bytes] = OrderedDict()

    @staticmethod
    def name(recording: CallRecording) -> str:
        return f"{recording.recording_id}.{recording.format}"

    def get(self, name: str) -> bytes | None:
        return self._files.get(name)

    async def save(self, recording: CallRecording, rate: int) -> str:
        """Encode the recording (in a worker thread) and keep it; returns its file name."""
        data = await asyncio.to_thread(recording.encode, rate)
        name = self.name(recording)
        self._files[name] = data
        while len(self._files) > self.keep:
            self._files.popitem(last=False)
        if self.directory is not None:
            # custom_file_name is the app's text: a name, never a path out of the folder.
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", recording.file_name).lstrip(".") or "recording"
            path = self.directory / f"{safe}-{name}"
            await asyncio.to_thread(_write, path, data)
            log.info("call recording saved: %s", path)
        return name


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
