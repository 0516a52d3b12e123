// Waveforms on a canvas: a live one that scrolls as a stream's frames are sent (one column per 20 ms frame,
// from the peaks of GET /_emulator/calls/{id}/levels), and a whole recording's, with markers on it.

import { h, offset } from "./dom.js";

const FRAME_MS = 20;
const COLORS = { inbound: "#2f7de1", outbound: "#e0762b", app: "#3a9d5d" };

function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 60;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { context, width, height };
}

// The live view of one track: the last `seconds` of peaks, newest on the right.
export class LiveWave {
  constructor(track, seconds = 10) {
    this.track = track;
    this.frames = Math.round((seconds * 1000) / FRAME_MS);
    this.peaks = new Float32Array(this.frames);
    this.endMs = 0; // media time just past the newest frame
    this.canvas = h("canvas", { class: "wave live", "data-track": track });
    this.label = h("span", { class: "wave-label" }, track);
    this.element = h("div", { class: "wave-row" }, this.label, this.canvas);
  }

  push(fromMs, values) {
    const end = fromMs + values.length * FRAME_MS;
    const shift = Math.round((end - this.endMs) / FRAME_MS);
    if (shift <= 0) return;
    if (shift >= this.frames) this.peaks.fill(0);
    else {
      this.peaks.copyWithin(0, shift);
      this.peaks.fill(0, this.frames - shift);
    }
    const first = this.frames - Math.round((end - fromMs) / FRAME_MS);
    values.forEach((value, i) => {
      if (first + i >= 0) this.peaks[first + i] = value;
    });
    this.endMs = end;
    this.label.textContent = `${this.track} ${offset(end)}`;
    this.draw();
  }

  draw() {
    const { context, width, height } = fitCanvas(this.canvas);
    context.clearRect(0, 0, width, height);
    context.fillStyle = COLORS[this.track];
    const step = width / this.frames;
    const middle = height / 2;
    for (let i = 0; i < this.frames; i++) {
      const half = Math.max(0.5, this.peaks[i] * middle);
      context.fillRect(i * step, middle - half, Math.max(1, step), half * 2);
    }
  }
}

// A 16-bit mono WAV (as the control plane serves recordings) as samples in -1..1 and its rate.
export function parseWav(buffer) {
  const view = new DataView(buffer);
  const rate = view.getUint32(24, true);
  let at = 12;
  while (at + 8 <= view.byteLength) {
    const id = String.fromCharCode(...new Uint8Array(buffer, at, 4));
    const size = view.getUint32(at + 4, true);
    if (id === "data") {
      const count = Math.min(size, view.byteLength - at - 8) >> 1;
      const samples = new Float32Array(count);
      for (let i = 0; i < count; i++) samples[i] = view.getInt16(at + 8 + 2 * i, true) / 32768;
      return { samples, rate };
    }
    at += 8 + size + (size & 1);
  }
  return { samples: new Float32Array(0), rate };
}

// A whole recording: its waveform (min and max per column) with markers, and a player; dispose() frees it.
//   markers: [{at_ms, label, side}]; side "caller" is drawn above the wave, "app" below it.
export function recordingView(track, blob, markers) {
  const canvas = h("canvas", { class: "wave whole", "data-track": track });
  const marks = h("div", { class: "markers" });
  const url = URL.createObjectURL(blob);
  const player = h("audio", { controls: true, preload: "metadata", src: url });
  let observer = null;
  const element = h(
    "div",
    { class: "recording", "data-track": track },
    h("div", { class: "wave-head" }, h("span", { class: "wave-label" }, track), player),
    h("div", { class: "wave-box" }, canvas, marks),
  );
  blob.arrayBuffer().then((buffer) => {
    const { samples, rate } = parseWav(buffer);
    const totalMs = (samples.length / rate) * 1000;
    element.dataset.durationMs = String(Math.round(totalMs));
    const draw = () => drawWhole(canvas, samples, COLORS[track] || "#666");
    draw();
    observer = new ResizeObserver(draw);
    observer.observe(canvas);
    let row;
    const rowEnd = [-Infinity, -Infinity, -Infinity]; // where each row's last label ends, in % of the width
    for (const marker of markers) {
      if (totalMs <= 0 || marker.at_ms > totalMs) continue;
      // Labels close together go on the next of three rows, so "presses 1" and "presses 2" stay readable.
      const at = (100 * marker.at_ms) / totalMs;
      row = rowEnd.findIndex((end) => end < at);
      if (row < 0) row = rowEnd.indexOf(Math.min(...rowEnd));
      rowEnd[row] = at + marker.label.length * 0.7;
      const mark = h(
        "span",
        { class: `marker ${marker.side} row${row}`, title: `${offset(marker.at_ms)} ${marker.label}` },
        marker.label,
      );
      mark.style.left = `${at}%`; // through the CSSOM: the page's CSP refuses style=""
      marks.append(mark);
    }
  });
  // What the page must free when the call is closed: the file's memory, and the watch on the canvas's size.
  const dispose = () => {
    URL.revokeObjectURL(url);
    if (observer) observer.disconnect();
  };
  return { element, dispose };
}

function drawWhole(canvas, samples, color) {
  const { context, width, height } = fitCanvas(canvas);
  context.clearRect(0, 0, width, height);
  context.fillStyle = color;
  const middle = height / 2;
  const columns = Math.max(1, Math.floor(width));
  const per = samples.length / columns;
  for (let x = 0; x < columns; x++) {
    let low = 0;
    let high = 0;
    const end = Math.min(samples.length, Math.floor((x + 1) * per));
    for (let i = Math.floor(x * per); i < end; i++) {
      const value = samples[i];
      if (value < low) low = value;
      else if (value > high) high = value;
    }
    const top = middle - high * middle;
    context.fillRect(x, top, 1, Math.max(1, (high - low) * middle));
  }
}
