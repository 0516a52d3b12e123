// The control plane, as the dashboard uses it: every request carries the key as a Bearer header.
//
// The key comes from the URL fragment (#key=...), which the browser never sends to the server, and stays in
// this tab's sessionStorage so a reload keeps it. Server-sent events are read with fetch() rather than
// EventSource, because EventSource cannot send an Authorization header.

const STORE = "telnyx-emulator-key";

export function keyFromPage() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const key = fragment.get("key");
  if (key) {
    sessionStorage.setItem(STORE, key);
    return key;
  }
  return sessionStorage.getItem(STORE) || "emulator";
}

export function setKey(key) {
  sessionStorage.setItem(STORE, key);
  location.hash = "key=" + encodeURIComponent(key);
}

export class ApiError extends Error {
  constructor(status, body) {
    const first = body && body.errors && body.errors[0];
    super(first ? `${status} ${first.title}: ${first.detail || ""}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.key}`, ...extra };
  }

  async request(method, path, body) {
    const init = { method, headers: this.headers() };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }

  async get(path) {
    return (await this.request("GET", path)).data;
  }

  async post(path, body) {
    return (await this.request("POST", path, body)).data;
  }

  // A file of the control plane (a recording) as a Blob, fetched with the key.
  async blob(path) {
    const response = await fetch(path, { headers: this.headers() });
    if (!response.ok) throw new ApiError(response.status, null);
    return response.blob();
  }

  // Read a server-sent event stream until it ends or `signal` aborts it; onEvent(name, data) per message, and
  // onOpen() once the server has answered (from then on nothing it publishes is missed).
  // Resolves when the stream ends; rejects on an HTTP error or a broken connection.
  async events(path, onEvent, signal, onOpen = () => {}) {
    const response = await fetch(path, { headers: this.headers({ Accept: "text/event-stream" }), signal });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    onOpen();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  }
}
