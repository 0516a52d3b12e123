// The caller console: act as the far end of a live call, through POST /_emulator/calls/{id}/caller.
// Each action queues behind the caller's current step, as the control plane documents.

import { h } from "./dom.js";

const KEYS = ["1", "2", "3", "A", "4", "5", "6", "B", "7", "8", "9", "C", "*", "0", "#", "D"];

export function callerConsole(api, callId, onDone) {
  const status = h("p", { class: "console-status", role: "status" });
  const act = async (action, what) => {
    status.textContent = `${what}…`;
    status.className = "console-status";
    try {
      await api.post(`/_emulator/calls/${encodeURIComponent(callId)}/caller`, action);
      status.textContent = `${what}: queued`;
    } catch (error) {
      status.textContent = `${what}: ${error.message}`;
      status.className = "console-status error";
    }
    onDone();
  };
  const keypad = h(
    "div",
    { class: "keypad" },
    KEYS.map((key) => h("button", { type: "button", "data-key": key, onclick: () => act({ dtmf: key }, `press ${key}`) }, key)),
  );
  const say = h("input", { type: "text", name: "say", placeholder: "Words the caller says", maxlength: 2000 });
  const play = h("input", { type: "text", name: "play", placeholder: "Audio file: a URL or a path on this machine" });
  const form = (input, name, label) =>
    h(
      "form",
      {
        class: "console-row",
        onsubmit: (event) => {
          event.preventDefault();
          if (input.value.trim()) act({ [name]: input.value.trim() }, `${label} “${input.value.trim()}”`);
        },
      },
      input,
      h("button", { type: "submit" }, label),
    );
  return h(
    "section",
    { class: "console", "aria-label": "Caller console" },
    h("h3", {}, "Caller console"),
    keypad,
    form(say, "say", "Say"),
    form(play, "play", "Play"),
    h(
      "div",
      { class: "console-row" },
      h("button", { type: "button", class: "silence", onclick: () => act({ silence_ms: 1000 }, "1 s of silence") }, "Silence 1 s"),
      h("button", { type: "button", class: "hangup", onclick: () => act({ hangup: true }, "hang up") }, "Hang up"),
    ),
    status,
  );
}
