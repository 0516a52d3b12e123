// One call's timeline: what happened to it, on one time axis from its creation.
//
// Lanes: the call's states, the app's commands (with their answers and errors), the webhooks sent (one entry
// per event, with each delivery attempt, its status and its signature), the streams, and injected faults.
// Each entry opens to show everything the control plane knows of it.

import { h, json, offset } from "./dom.js";

export const LANES = ["state", "command", "webhook", "stream", "fault"];

const time = (iso) => (iso ? Date.parse(iso) : NaN);

export class Timeline {
  constructor(callId) {
    this.callId = callId;
    this.history = [];
    this.commands = [];
    this.webhooks = new Map(); // event id: {event_type, attempts: [...]}
    this.streams = new Map(); // stream id: its JSON
    this.faults = [];
    this.open = new Set(); // keys of the entries shown open
    this.seen = new Set(); // what was added: the feed and the lists read at opening may both give an entry
  }

  // Whether `key` is new (and now known): each command, attempt and fault is shown once.
  fresh(key) {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  setCall(call) {
    this.history = call.history || [];
    for (const stream of call.streams || []) this.streams.set(stream.stream_id, stream);
  }

  addCommand(entry) {
    const key = `command:${entry.at}:${entry.method}:${entry.path}:${entry.status}`;
    if (entry.path.includes(`/calls/${this.callId}/`) && this.fresh(key)) this.commands.push(entry);
  }

  addWebhook(attempt) {
    const key = `webhook:${attempt.event_id}:${attempt.attempt}:${attempt.is_failover}:${attempt.at}`;
    if (attempt.call_control_id !== this.callId || !this.fresh(key)) return;
    let event = this.webhooks.get(attempt.event_id);
    if (!event) {
      event = { event_type: attempt.event_type, attempts: [] };
      this.webhooks.set(attempt.event_id, event);
    }
    event.attempts.push(attempt);
  }

  addStream(stream) {
    if (stream.call_control_id === this.callId) this.streams.set(stream.stream_id, stream);
  }

  addFault(injected) {
    const key = `fault:${injected.rule_id}:${injected.at}:${injected.detail}`;
    if (injected.call_control_id === this.callId && this.fresh(key)) this.faults.push(injected);
  }

  // Every entry, oldest first: {key, lane, at (epoch ms), title, status: "ok" | "error" | "", detail()}
  entries() {
    const list = [];
    for (const { at, state } of this.history) {
      list.push({ key: `state:${at}:${state}`, lane: "state", at: time(at), title: `call ${state}`, status: "" });
    }
    this.commands.forEach((entry, i) => {
      const action = entry.path.split("/").pop();
      const refused = entry.status >= 400;
      const flags = [entry.deduplicated ? "repeated command_id" : "", entry.fault || ""].filter(Boolean);
      list.push({
        key: `command:${i}`,
        lane: "command",
        at: time(entry.at),
        title: `${entry.method} ${action} → ${entry.status}${flags.length ? ` (${flags.join("; ")})` : ""}`,
        status: refused ? "error" : "ok",
        detail: () => commandDetail(entry),
      });
    });
    for (const [id, event] of this.webhooks) {
      const last = event.attempts[event.attempts.length - 1];
      const outcome = last.skipped ? "not sent (no webhook URL)" : last.status ?? last.error ?? "no answer";
      const tries = event.attempts.length > 1 ? ` after ${event.attempts.length} attempts` : "";
      list.push({
        key: `webhook:${id}`,
        lane: "webhook",
        at: time(event.attempts[0].at),
        title: `${event.event_type} → ${outcome}${tries}`,
        status: last.ok ? "ok" : last.skipped ? "" : "error",
        detail: () => webhookDetail(event),
      });
    }
    for (const stream of this.streams.values()) {
      const started = time(stream.started_at);
      if (!Number.isNaN(started)) {
        list.push({
          key: `stream:${stream.stream_id}:start`,
          lane: "stream",
          at: started,
          title: `stream ${stream.track} ${stream.codec} → ${stream.stream_url}`,
          status: "ok",
          detail: () => json(stream),
        });
      }
      if (stream.ended_at) {
        list.push({
          key: `stream:${stream.stream_id}:end`,
          lane: "stream",
          at: time(stream.ended_at),
          title: `stream ended: ${stream.end_reason}${stream.error ? ` (${stream.error})` : ""}`,
          status: stream.state === "failed" ? "error" : "",
          detail: () => json(stream),
        });
      }
    }
    this.faults.forEach((fault, i) => {
      list.push({
        key: `fault:${i}`,
        lane: "fault",
        at: time(fault.at),
        title: `fault ${fault.rule_id} (${fault.kind}): ${fault.detail}`,
        status: "error",
        detail: () => json(fault),
      });
    });
    return list.filter((entry) => !Number.isNaN(entry.at)).sort((a, b) => a.at - b.at);
  }

  render(container) {
    const list = this.entries();
    if (!list.length) {
      container.replaceChildren(h("p", { class: "empty" }, "Nothing yet."));
      return;
    }
    const start = list[0].at;
    const end = Math.max(list[list.length - 1].at, start + 1);
    const rows = list.map((entry) => this.row(entry, start));
    container.replaceChildren(axis(list, start, end), h("ol", { class: "timeline" }, rows));
  }

  row(entry, start) {
    const isOpen = this.open.has(entry.key);
    const body = isOpen && entry.detail ? h("div", { class: "detail" }, entry.detail()) : null;
    const toggle = () => {
      if (this.open.has(entry.key)) this.open.delete(entry.key);
      else this.open.add(entry.key);
      const next = this.row(entry, start);
      item.replaceWith(next);
    };
    const item = h(
      "li",
      { class: `entry lane-${entry.lane} ${entry.status}`, "data-lane": entry.lane },
      h(
        "button",
        { class: "entry-head", type: "button", onclick: entry.detail ? toggle : null, "aria-expanded": isOpen },
        h("span", { class: "at" }, offset(entry.at - start)),
        h("span", { class: "lane" }, entry.lane),
        h("span", { class: "title" }, entry.title),
      ),
      body,
    );
    return item;
  }
}

// The entries as dots on one horizontal axis, a lane each.
function axis(list, start, end) {
  const width = 1000;
  const laneHeight = 14;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width + 70} ${LANES.length * laneHeight + 16}`);
  svg.setAttribute("class", "axis");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  LANES.forEach((lane, i) => {
    add("text", { x: 0, y: i * laneHeight + 11, class: "axis-label" }, lane);
    add("line", { x1: 70, x2: width + 70, y1: i * laneHeight + 7, y2: i * laneHeight + 7, class: "axis-line" });
  });
  for (const entry of list) {
    const x = 70 + ((entry.at - start) / (end - start)) * width;
    const y = LANES.indexOf(entry.lane) * laneHeight + 7;
    add("circle", { cx: x, cy: y, r: 4, class: `dot lane-${entry.lane} ${entry.status}` }).append(
      Object.assign(document.createElementNS("http://www.w3.org/2000/svg", "title"), {
        textContent: `${offset(entry.at - start)} ${entry.title}`,
      }),
    );
  }
  add("text", { x: 70, y: LANES.length * laneHeight + 12, class: "axis-label" }, "0 s");
  add("text", { x: width + 70, y: LANES.length * laneHeight + 12, class: "axis-label end" }, offset(end - start));
  return svg;
}

function commandDetail(entry) {
  return h(
    "div",
    {},
    h("p", {}, `${entry.method} ${entry.path}${entry.query ? `?${entry.query}` : ""} → ${entry.status} in ${entry.duration_ms} ms`),
    entry.errors ? [h("h4", {}, "Errors"), json({ errors: entry.errors })] : null,
    h("h4", {}, "Body"),
    json(entry.body),
  );
}

function webhookDetail(event) {
  const first = event.attempts.find((attempt) => attempt.payload) || event.attempts[0];
  const urls = first.payload?.data?.payload?.recording_urls;
  return h(
    "div",
    {},
    h(
      "table",
      { class: "attempts" },
      h("tr", {}, ["#", "at", "url", "status", "ms", "error / fault", "signature"].map((name) => h("th", {}, name))),
      event.attempts.map((attempt) =>
        h(
          "tr",
          { class: attempt.ok ? "ok" : "error" },
          h("td", {}, attempt.attempt, attempt.is_failover ? " (failover)" : ""),
          h("td", {}, attempt.at.slice(11, 23)),
          h("td", {}, attempt.url),
          h("td", {}, attempt.status ?? ""),
          h("td", {}, attempt.latency_ms),
          h("td", {}, [attempt.error, attempt.fault].filter(Boolean).join("; ")),
          h("td", { class: "signature" }, signatureText(attempt.signature)),
        ),
      ),
    ),
    // Played from this page's own origin: the link names the host the app called, which the page's content
    // security policy may not allow (localhost against 127.0.0.1, a container's name, api.telnyx.com via the proxy).
    urls
      ? h("div", { class: "recording-links" }, Object.values(urls).map((url) => h("audio", { controls: true, src: new URL(url).pathname })))
      : null,
    h("h4", {}, "Payload"),
    json(first.payload),
  );
}

function signatureText(signature) {
  if (!signature) return "";
  return Object.entries(signature)
    .map(([name, value]) => `${name}: ${value}`)
    .join("\n");
}
