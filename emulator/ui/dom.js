// Small helpers to build the page. Text always goes in as text nodes, never as HTML: a call's numbers, a
// webhook's payload and a command's body are whatever the app sent.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
}

// "12.3 s", "4 min 05 s", "1 h 02 min"
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

// "+1.234 s" from the call's start
export function offset(ms) {
  return `+${(Math.max(0, ms) / 1000).toFixed(3)} s`;
}

export function shortId(id) {
  return id && id.length > 16 ? `${id.slice(0, 10)}…${id.slice(-4)}` : id || "";
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}
