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
let selected = null; // {id, call, timeline, levels: AbortController, waves: Map, shownRecordings: Set}
let feed = null; // the AbortController of the feed's request

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
    renderCalls();
    if (selected && selected.id === data.call_control_id) refreshSelected();
  } else if (name === "reset" || name === "lost") {
    reload();
  } else if (selected) {
    const timeline = selected.timeline;
    if (name === "command") timeline.addCommand(data);
    else if (name === "webhook") timeline.addWebhook(data);
    else if (name === "fault") timeline.addFault(data);
    else if (name === "stream") timeline.addStream(data);
    if (data.call_control_id === selected.id || (name === "command" && data.path.includes(`/calls/${selected.id}/`))) {
      refreshSelected(); // its state, streams and metrics so far
    }
    timeline.render($("timeline"));
  }
}

async function reload() {
  const list = await api.get("/_emulator/calls?view=brief");
  calls.clear();
  for (const call of list) calls.set(call.call_control_id, call);
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
      h("td", {}, call.scenario || "default"),
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
  if (selected && selected.id !== id) closeCall();
  else if (selected) {
    // Opened again (the feed reconnected): its audio is rebuilt from what the emulator has now.
    if (selected.levels) selected.levels.abort();
    $("detail").querySelector("#audio")?.remove();
  }
  const params = new URLSearchParams(location.hash.slice(1));
  params.set("call", id);
  history.replaceState(null, "", `#${params}`);
  const query = `call_control_id=${encodeURIComponent(id)}`;
  const [call, commands, webhooks, faults] = await Promise.all([
    api.get(`/_emulator/calls/${encodeURIComponent(id)}`),
    api.get(`/_emulator/commands?${query}`),
    api.get(`/_emulator/webhooks?${query}`),
    api.get("/_emulator/faults/injected"),
  ]);
  const timeline = new Timeline(id);
  timeline.setCall(call);
  commands.forEach((entry) => timeline.addCommand(entry));
  webhooks.forEach((attempt) => timeline.addWebhook(attempt));
  faults.forEach((fault) => timeline.addFault(fault));
  selected = { id, call, timeline, levels: null, waves: new Map(), shownRecordings: new Set() };
  renderCalls();
  renderSelected();
}

function closeCall() {
  if (selected && selected.levels) selected.levels.abort();
  selected = null;
  replace($("detail"), h("p", { class: "empty" }, "Open a call to see its timeline, its audio and the caller console."));
}

let refreshing = null;
function refreshSelected() {
  // Many messages can name the call at once (a hangup ends its streams too): one fetch for all of them.
  if (refreshing) return;
  refreshing = setTimeout(async () => {
    refreshing = null;
    if (!selected) return;
    const call = await api.get(`/_emulator/calls/${encodeURIComponent(selected.id)}`);
    selected.call = call;
    selected.timeline.setCall(call);
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
      ` ${call.direction} · scenario ${call.scenario || "default"} · `,
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
      showRecording(stream).then((view) => recordings.append(view));
    }
  }
}

function openLevels(box) {
  const controller = (selected.levels = new AbortController());
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
    .catch(() => {});
}

async function showRecording(stream) {
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
      box.append(recordingView(track, await api.blob(`/_emulator/streams/${id}/recording/${track}.wav`), marks));
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
