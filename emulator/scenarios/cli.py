"""``telnyx-emulator scenario check|render``: validate scenario files, and hear what an app would receive.

``check FILE…`` loads each scenario (a ``.yaml`` path, a folder of them, or a name from the scenario folder)
and prints one line per file: what it contains, or its error in the ``file:line: field: message`` form that
editors and CI problem matchers understand. Exit status 2 if any file is bad. ``--bundle-speech`` also stores
every ``say`` step's audio beside its scenario (``audio/tts/``), so the scenario loads where espeak-ng is not
installed.

``render FILE -o out.wav`` writes one scenario's track as an app that never answers would receive it: every
``wait_for`` lasts its timeout and then does its ``on_timeout``; a ``hangup`` ends the file. One output file
holds one scenario, so a folder is a usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from emulator import PROG
from emulator.scenarios import loader as scenarios, tts
from emulator.scenarios.cursor import End, RenderedTrack, render_track
from emulator.scenarios.loader import SCENARIO_SUFFIXES, Scenario, ScenarioError
from emulator.scenarios.steps import Say, walk


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scenario = subparsers.add_parser(
        "scenario",
        help="check scenario files, or render one to an audio file",
        description="Work with scenario files (the scripted callers): check them, or render one to hear it.",
    )
    commands = scenario.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    check = commands.add_parser(
        "check",
        help="validate scenario files; exit status 2 if any is bad",
        description="Load each scenario as the server would and print one line per file: a summary, or the error "
        "as file:line: field: message.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a .yaml file, a folder of them, or a scenario name")
    check.add_argument(
        "--bundle-speech",
        action="store_true",
        help="also store each say step's audio in audio/tts/ beside its scenario, so it loads without espeak-ng",
    )
    render = commands.add_parser(
        "render",
        help="write what an app that never answers would receive to an audio file",
        description="Render a scenario track to WAV/FLAC/OGG (by the output's extension). Every wait_for lasts "
        "its timeout, then does its on_timeout; a hangup ends the track.",
    )
    render.add_argument("file", metavar="FILE", help="a .yaml file or a scenario name (not a folder)")
    render.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="e.g. out.wav")
    render.add_argument("--rate", type=int, default=16000, help="sample rate in Hz (default 16000; PCMU is 8000)")
    render.add_argument(
        "--track",
        choices=("inbound", "outbound", "both"),
        default="inbound",
        help="the caller's audio (default), the call's, or both as a stereo file (left: inbound)",
    )
    listing = commands.add_parser(
        "list",
        help="list the scenarios of the scenario folder: name, length, description",
        description="One line per scenario the server would load from its scenario folder (the bundled one "
        "unless --scenario-dir says otherwise): its name, what it lasts, and its description.",
    )
    for sub in (check, render, listing):
        sub.add_argument("--scenario-dir", type=Path, help="where scenario names are looked up (default: scenarios/)")


def run(args: argparse.Namespace) -> int:
    directory = args.scenario_dir or scenarios.default_scenario_dir()
    speech = tts.SpeechCache.from_env()
    if args.scenario_command == "check":
        return _check(args.files, directory, speech, bundle=args.bundle_speech)
    if args.scenario_command == "list":
        return _list(directory, speech)
    return _render(args, directory, speech)


def _check(names: list[str], directory: Path, speech: tts.SpeechCache, *, bundle: bool) -> int:
    bad = 0
    for path in _expand(names, directory):
        try:
            scenario = scenarios.load_scenario(path, speech=speech)
            bundled = _bundle(scenario, speech) if bundle else 0
        except (ScenarioError, tts.SpeechError, OSError) as exc:
            print(exc, file=sys.stderr, flush=True)
            bad += 1
            continue
        note = f"; bundled {bundled} new speech file{'s' * (bundled != 1)}" if bundle else ""
        print(f"{path}: ok: {_summary(scenario)}{note}", flush=True)
    return 2 if bad else 0


def _list(directory: Path, speech: tts.SpeechCache) -> int:
    paths = _expand([str(directory)], directory) if directory.is_dir() else []
    if not paths:
        print(f"{PROG}: error: no scenario files in {directory}", file=sys.stderr)
        return 2
    bad = 0
    width = max(len(path.stem) for path in paths)
    for path in paths:
        try:
            scenario = scenarios.load_scenario(path, speech=speech)
        except (ScenarioError, tts.SpeechError, OSError) as exc:
            print(exc, file=sys.stderr, flush=True)
            bad += 1
            continue
        description = " ".join(scenario.description.split())
        print(f"{path.stem:<{width}}  {_summary(scenario)}" + (f"  {description}" if description else ""), flush=True)
    return 2 if bad else 0


def _expand(names: list[str], directory: Path) -> list[Path]:
    """The scenario files ``names`` stand for: a folder's ``*.yaml``/``*.yml`` (not recursively), or one file each."""
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES and p.is_file()))
        else:
            paths.append(_locate(name, directory))
    return paths


def _locate(name: str, directory: Path) -> Path:
    """The file of one scenario: a path as given, else a name from ``directory`` (a missing file reports itself)."""
    path = Path(name)
    if path.suffix in SCENARIO_SUFFIXES or path.exists():
        return path
    candidates = [directory / f"{name}{suffix}" for suffix in SCENARIO_SUFFIXES]
    return next((p for p in candidates if p.is_file()), candidates[0])


def _bundle(scenario: Scenario, speech: tts.SpeechCache) -> int:
    bundle_dir, added = scenario.base_dir / tts.BUNDLE_DIR, 0
    for step in walk((*scenario.inbound, *scenario.outbound)):
        if isinstance(step, Say):
            voice = tts.Voice(step.voice, step.wpm, step.pitch)
            if not (bundle_dir / f"{tts.key(step.text, voice)}.flac").is_file():
                speech.bundle(step.text, voice, bundle_dir)
                added += 1
    return added


def _summary(scenario: Scenario) -> str:
    """The inbound track in one line: its steps, and its length and ending as an app that never answers meets it."""
    rendered = render_track(scenario.inbound, 16000)
    steps = sum(1 for _ in walk(scenario.inbound))
    parts = [f"{steps} inbound step{'s' * (steps != 1)}", f"{rendered.duration_ms / 1000:.1f} s"]
    if rendered.timeouts:
        waits = rendered.timeouts
        parts[-1] += f" if the app never answers ({waits} wait_for step{'s' * (waits != 1)} at the timeout)"
    if rendered.end is not None and rendered.end.reason != "completed":
        parts.append(f"then {_ending(rendered.end)}")
    elif scenario.at_end == "stay":
        parts.append("then stays on the line (at_end: stay)")
    return ", ".join(parts)


def _render(args: argparse.Namespace, directory: Path, speech: tts.SpeechCache) -> int:
    if args.rate <= 0:
        print(f"{PROG}: error: --rate must be positive, got {args.rate}", file=sys.stderr)
        return 2
    if Path(args.file).is_dir():  # one output file holds one scenario; check is the command that takes folders
        print(f"{PROG}: error: render takes one scenario, and {args.file} is a folder", file=sys.stderr)
        return 2
    try:
        scenario = scenarios.load_scenario(_locate(args.file, directory), speech=speech)
    except ScenarioError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    inbound = render_track(scenario.inbound, args.rate)
    outbound = render_track(scenario.outbound, args.rate)
    if args.track == "both":
        n = max(len(inbound.pcm), len(outbound.pcm))
        audio = np.zeros((n, 2), dtype=np.int16)
        audio[: len(inbound.pcm), 0], audio[: len(outbound.pcm), 1] = inbound.pcm, outbound.pcm
    else:
        audio = (inbound if args.track == "inbound" else outbound).pcm
    try:
        sf.write(args.output, audio, args.rate, subtype=None if args.output.suffix.lower() == ".ogg" else "PCM_16")
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"{PROG}: error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {len(audio) / args.rate:.2f} s at {args.rate} Hz ({args.track})")
    print(_describe_render(inbound))
    return 0


def _describe_render(track: RenderedTrack) -> str:
    digits = ", ".join(f"{e.digit} at {e.at_ms / 1000:.2f} s" for e in track.dtmf) or "none"
    end = track.end
    at = end.at_ms / 1000 if end is not None else track.duration_ms / 1000
    return f"inbound DTMF: {digits}; at {at:.2f} s {_ending(end)}"


def _ending(end: End | None) -> str:
    """How a rendered script ends, in the words both commands print."""
    if end is None or end.reason == "completed":
        return "the script ends"
    if end.reason == "hangup":
        return f"the caller hangs up ({end.cause})"
    return f"the script fails: {end.error}"
