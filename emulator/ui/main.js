// The dashboard: the calls of one namespace (the key's), live, and the one selected opened.
//
// Everything live comes from one feed, GET /_emulator/events; the page fetches a list or a call only when it
// (re)connects or when a call is opened, never on a timer.

import { Api, keyFromPage, setKey } from "./api.js";
import { callerConsole } from "./console.js";
import { duration, h, replace, shortId } from "./dom.js";
import { Timeline } from "./timeline.js";
import { LiveWave, recordingView } from "./waveform.js";

const api = new Api(keyFromPage());
const $ = (id) => document.getElementById(id);
const calls = new Map(); // call_control_id: its brief JSON
// The call opened: {id, call (null while it loads), timeline, levels: AbortController, waves: Map,
// shownRecordings: Set, cleanups: [functions that free what its audio holds], stale: refresh once loaded}
let selected = null;
let opening = 0; // counts select() calls: one that a later one overtook drops its answers
let touched = null; // while reload() reads the list: the calls the feed changed meanwhile (their message is newer)
let feed = null; // the AbortController of the feed's request

function notice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

// -- the feed ---------------------------------------------------------------------------------------

function connect(delay = 0) {
  if (feed) feed.abort();
  const controller = (feed = new AbortController());
  setTimeout(async () => {
    setConnection("connecting");
    try {
      await api.events("/_emulator/events", onEvent, controller.signal, () => {
        setConnection("live");
        reload();
      });
      if (controller.signal.aborted) return;
      setConnection("ended");
      connect(1000); // the emulator stopped or dropped us: try again
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error.status === 401) {
        setConnection("key");
        return;
      }
      setConnection("offline");
      connect(Math.min(2 * (delay || 500), 10000));
    }
  }, delay);
}

function onEvent(name, data) {
  if (name === "call") {
    calls.set(data.call_control_id, data);
    if (touched) touched.add(data.call_control_id);
    renderCalls();
    if (selected && selected.id === data.call_control_id) refreshSelected();
  } else if (name === "reset") {
    reload();
  } else if (name === "lost") {
    // The emulator dropped this reader (it fell behind): the feed ends, and connect() reloads everything.
  } else if (selected) {
    const timeline = selected.timeline;
    if (name === "command") timeline.addCommand(data);
    else if (name === "webhook") timeline.addWebhook(data);
    else if (name === "fault") timeline.addFault(data);
    else if (name === "stream") timeline.addStream(data);
    if (data.call_control_id === selected.id || (name === "command" && data.path.includes(`/calls/${selected.id}/`))) {
      refreshSelected(); // its state, streams and metrics so far
    }
    if (selected.call) timeline.render($("timeline"));
  }
}

async function reload() {
  touched = new Set();
  let list;
  try {
    list = await api.get("/_emulator/calls?view=brief");
  } catch (error) {
    touched = null;
    notice(`Could not read the calls: ${error.message}`);
    return;
  }
  const fresh = new Map(list.map((call) => [call.call_control_id, call]));
  for (const id of touched) if (calls.has(id)) fresh.set(id, calls.get(id));
  touched = null;
  calls.clear();
  for (const [id, call] of fresh) calls.set(id, call);
  notice("");
  renderCalls();
  const wanted = selected ? selected.id : new URLSearchParams(location.hash.slice(1)).get("call");
  if (wanted && calls.has(wanted)) select(wanted);
  else if (selected) closeCall();
}

function setConnection(state) {
  const labels = {
    connecting: "connecting…",
    live: "live",
    ended: "reconnecting…",
    offline: "emulator not reachable: retrying",
    key: "this key is refused: change it",
  };
  const badge = $("connection");
  badge.textContent = labels[state];
  badge.dataset.state = state;
}

// -- the list of calls ----------------------------------------------------------------------------

function callDuration(call) {
  const start = Date.parse(call.created_at);
  const end = call.ended_at ? Date.parse(call.ended_at) : Date.now();
  return Number.isNaN(start) ? "" : duration(end - start);
}

function renderCalls() {
  const rows = [...calls.values()].reverse().map((call) =>
    h(
      "tr",
      {
        class: `call ${call.state}${selected && selected.id === call.call_control_id ? " selected" : ""}`,
        "data-call": call.call_control_id,
        tabindex: 0,
        onclick: () => select(call.call_control_id),
        onkeydown: (event) => event.key === "Enter" && select(call.call_control_id),
      },
      h("td", {}, h("span", { class: `state ${call.state}` }, call.state)),
      h("td", { title: call.direction }, call.direction === "incoming" ? "→ app" : "app →"),
      h("td", {}, call.from),
      h("td", {}, call.to),
      h("td", { class: "duration" }, callDuration(call)),
      h("td", {}, call.scenario || "(default)"),
    ),
  );
  replace($("calls"), rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No calls yet: ring the app (telnyx-emulator call, or POST /_emulator/calls).")));
  $("count").textContent = `${calls.size} call${calls.size === 1 ? "" : "s"}`;
}

setInterval(() => {
  for (const row of document.querySelectorAll("tr.call")) {
    const call = calls.get(row.dataset.call);
    if (call && !call.ended_at) row.querySelector(".duration").textContent = callDuration(call);
  }
}, 1000);

// -- one call -------------------------------------------------------------------------------------

async function select(id) {
  const turn = ++opening;
  dropSelected();
  const mine = (selected = {
    id,
    call: null,
    timeline: new Timeline(id), // takes the feed's messages from now on, while the lists load
    levels: null,
    waves: new Map(),
    shownRecordings: new Set(),
    cleanups: [],
    stale: false,
  });
  const params = new URLSearchParams(location.hash.slice(1));
  params.set("call", id);
  history.replaceState(null, "", `#${params}`);
  renderCalls();
  const query = `call_control_id=${encodeURIComponent(id)}`;
  let lists;
  try {
    lists = await Promise.all([
      api.get(`/_emulator/calls/${encodeURIComponent(id)}`),
      api.get(`/_emulator/commands?${query}`),
      api.get(`/_emulator/webhooks?${query}`),
      api.get("/_emulator/faults/injected"),
    ]);
  } catch (error) {
    if (turn === opening) replace($("detail"), h("p", { class: "empty" }, `Could not open the call: ${error.message}`));
    return;
  }
  if (turn !== opening) return; // another call was opened meanwhile
  const [call, commands, webhooks, faults] = lists;
  mine.timeline.setCall(call);
  commands.forEach((entry) => mine.timeline.addCommand(entry)); // entries the feed gave already are kept once
  webhooks.forEach((attempt) => mine.timeline.addWebhook(attempt));
  faults.forEach((fault) => mine.timeline.addFault(fault));
  mine.call = call;
  renderSelected();
  if (mine.stale) refreshSelected();
}

// Forget the call opened: its level stream, its recordings' memory, its detail pane's audio.
function dropSelected() {
  if (!selected) return;
  if (selected.levels) selected.levels.abort();
  for (const cleanup of selected.cleanups) cleanup();
  $("detail").querySelector("#audio")?.remove();
  selected = null;
}

function closeCall() {
  dropSelected();
  replace($("detail"), h("p", { class: "empty" }, "Open a call to see its timeline, its audio and the caller console."));
}

let refreshing = null;
function refreshSelected() {
  if (selected && !selected.call) {
    selected.stale = true; // still loading: refreshed once it has
    return;
  }
  // Many messages can name the call at once (a hangup ends its streams too): one fetch for all of them.
  if (refreshing || !selected) return;
  refreshing = setTimeout(async () => {
    refreshing = null;
    const mine = selected;
    if (!mine) return;
    let call;
    try {
      call = await api.get(`/_emulator/calls/${encodeURIComponent(mine.id)}`);
    } catch {
      return; // gone (a reset): the feed's reset message reloads the list
    }
    if (selected !== mine) return; // another call was opened meanwhile
    mine.call = call;
    mine.timeline.setCall(call);
    renderSelected();
  }, 50);
}

function renderSelected() {
  const { call, timeline } = selected;
  const detail = $("detail");
  const ended = !call.is_alive;
  const head = h(
    "header",
    { class: "call-head" },
    h("h2", {}, `${call.from} → ${call.to}`),
    h(
      "p",
      {},
      h("span", { class: `state ${call.state}` }, call.state),
      ` ${call.direction} · scenario ${call.scenario || "(the default)"} · `,
      h("code", { title: call.call_control_id }, shortId(call.call_control_id)),
      ended && call.hangup_cause ? ` · ended: ${call.hangup_cause} (${call.hangup_source})` : "",
    ),
  );
  let console_ = detail.querySelector(".console");
  if (ended) console_ = null;
  else if (!console_ || console_.dataset.call !== call.call_control_id) {
    console_ = callerConsole(api, call.call_control_id, () => {});
    console_.dataset.call = call.call_control_id;
  }
  const audio = detail.querySelector("#audio") || h("section", { id: "audio" });
  const title = ended ? "Conversation metrics" : "Conversation metrics so far";
  const metrics = call.metrics ? h("section", { class: "metrics" }, h("h3", {}, title), metricsTable(call.metrics)) : null;
  const timelineBox = detail.querySelector("#timeline") || h("section", { id: "timeline" });
  const top = h("div", { class: console_ ? "call-top with-console" : "call-top" }, console_, audio);
  replace(detail, head, top, h("h3", {}, "Timeline"), timelineBox, metrics);
  renderAudio(audio);
  timeline.render(timelineBox);
}

function metricsTable(metrics) {
  const fields = ["media_ms", "first_audio_ms", "unanswered_turns", "talk_over_ms", "dead_air_ms", "max_buffered_ms", "underruns", "underrun_ms"];
  const responses = metrics.turns.map((turn) => (turn.response_ms === null ? "—" : turn.response_ms)).join(", ");
  return h(
    "table",
    {},
    fields.map((name) => h("tr", {}, h("th", {}, name), h("td", {}, metrics[name] ?? "—"))),
    h("tr", {}, h("th", {}, "response_ms per turn"), h("td", {}, responses || "—")),
    h("tr", {}, h("th", {}, "barge_ins"), h("td", {}, metrics.barge_ins.length)),
  );
}

// -- audio: live levels while the call runs, recordings once a stream has ended -------------------

function renderAudio(section) {
  const { call } = selected;
  if (!section.firstChild) section.append(h("h3", {}, "Audio"), h("div", { class: "live-waves" }), h("div", { class: "recordings" }));
  const liveBox = section.querySelector(".live-waves");
  const recordings = section.querySelector(".recordings");
  if (!call.streams.length) {
    replace(liveBox, h("p", { class: "empty" }, "No stream on this call: streaming_start (or stream_url on answer or dial) opens one."));
  }
  const live = call.streams.filter((stream) => !stream.ended_at);
  if (live.length && call.is_alive && !selected.levels) openLevels(liveBox);
  if (!live.length && selected.levels) {
    selected.levels.abort();
    selected.levels = null;
    liveBox.replaceChildren();
  }
  for (const stream of call.streams) {
    if (stream.ended_at && !selected.shownRecordings.has(stream.stream_id)) {
      selected.shownRecordings.add(stream.stream_id);
      const mine = selected;
      showRecording(stream, mine).then((view) => {
        if (selected === mine) recordings.append(view);
      });
    }
  }
}

function openLevels(box) {
  const mine = selected;
  const controller = (mine.levels = new AbortController());
  const waves = selected.waves;
  box.replaceChildren();
  const path = `/_emulator/calls/${encodeURIComponent(selected.id)}/levels`;
  api
    .events(path, (name, data) => {
      if (name !== "level") return;
      for (const track of ["inbound", "outbound"]) {
        const key = `${data.stream_id}:${track}`;
        if (!waves.has(key)) {
          const wave = new LiveWave(track);
          wave.element.dataset.stream = data.stream_id;
          waves.set(key, wave);
          box.append(wave.element);
        }
        waves.get(key).push(data.from_ms, data[track]);
      }
    }, controller.signal)
    .catch(() => {})
    .finally(() => {
      if (mine.levels === controller) mine.levels = null; // ended (the call did): a later stream opens a new one
    });
}

async function showRecording(stream, owner) {
  const id = encodeURIComponent(stream.stream_id);
  const box = h("div", { class: "stream-recording", "data-stream": stream.stream_id }, h("h4", {}, `Stream ${shortId(stream.stream_id)}: ${stream.track}, ${stream.codec}, ${stream.end_reason}`));
  let markers;
  try {
    markers = await api.get(`/_emulator/streams/${id}/markers`);
  } catch (error) {
    box.append(h("p", { class: "empty" }, `No recording: ${error.message}`));
    return box;
  }
  if (markers.caller === null) {
    box.append(h("p", { class: "empty" }, "This stream's recording is no longer kept (only the most recent are)."));
    return box;
  }
  const caller = markers.caller.map((step) => ({ at_ms: step.at_ms, label: step.label, side: "caller" }));
  const app = markers.app.map((mark) => ({ at_ms: mark.at_ms, label: mark.kind === "mark" ? `mark ${mark.name}` : "clear", side: "app" }));
  for (const [track, marks] of [["inbound", caller], ["outbound", app], ["app", []]]) {
    try {
      const blob = await api.blob(`/_emulator/streams/${id}/recording/${track}.wav`);
      const view = recordingView(track, blob, marks);
      owner.cleanups.push(view.dispose);
      box.append(view.element);
    } catch (error) {
      box.append(h("p", { class: "empty" }, `${track}: ${error.message}`));
    }
  }
  return box;
}

// -- start ----------------------------------------------------------------------------------------

$("key").textContent = api.key;
$("change-key").addEventListener("click", () => {
  const key = prompt("The API key your app uses (each key is its own namespace):", api.key);
  if (key) {
    setKey(key);
    location.reload();
  }
});
window.dashboard = { calls, get selected() { return selected; } }; // for a look from the browser's console
closeCall();
connect();
