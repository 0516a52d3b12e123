// Smoke test of the official Node SDK (npm "telnyx") against the emulator; run by test_node_sdk.py.
// Reads TELNYX_BASE_URL, TELNYX_API_KEY, TELNYX_PUBLIC_KEY, STREAM_URL and WEBHOOK (JSON: {body, headers});
// prints one JSON object of what it saw, which the Python test checks.
"use strict";
const Telnyx = require("telnyx");

async function main() {
  const client = new Telnyx({
    apiKey: process.env.TELNYX_API_KEY,
    baseURL: process.env.TELNYX_BASE_URL,
    publicKey: process.env.TELNYX_PUBLIC_KEY,
    maxRetries: 0,
  });
  const out = {};
  const dialed = await client.calls.dial({
    connection_id: "1234",
    from: "+13125550111",
    to: "+13125550122",
  });
  out.dial = dialed.data;
  const id = "v3:node-sdk";
  const streamUrl = process.env.STREAM_URL;
  out.start = (await client.calls.actions.startStreaming(id, { stream_url: streamUrl })).data;
  out.stop = (await client.calls.actions.stopStreaming(id, {})).data;
  out.hangup = (await client.calls.actions.hangup(id, {})).data;
  out.status = (await client.calls.retrieveStatus(id)).data;
  try {
    await client.calls.actions.startStreaming("v3:node-bad", { stream_url: "https://nope", stream_track: "both" });
    out.error = "no error";
  } catch (err) {
    out.error = {
      unprocessable: err instanceof Telnyx.UnprocessableEntityError,
      status: err.status,
      codes: err.error.errors.map((e) => e.code),
    };
  }
  const webhook = JSON.parse(process.env.WEBHOOK);
  const event = await client.webhooks.unwrap(webhook.body, { headers: webhook.headers });
  out.webhook = event.data.event_type;
  try {
    await client.webhooks.unwrap(webhook.body.replace("incoming", "outgoing"), { headers: webhook.headers });
    out.forged = "accepted";
  } catch (err) {
    out.forged = "rejected";
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
