// A Node app that hard-codes Telnyx's URL and calls it with axios, as written for production; prints the new
// call's id. Run as is it talks to https://api.telnyx.com; with HTTPS_PROXY set it talks to the emulator
// (tests/sdk/test_node_zero_code.py).
"use strict";
const axios = require("axios");

const TELNYX_API = "https://api.telnyx.com/v2"; // hard-coded, as in most apps

axios
  .post(
    `${TELNYX_API}/calls`,
    { connection_id: "1", from: "+13125550111", to: "+13125550122" },
    { headers: { Authorization: `Bearer ${process.env.TELNYX_API_KEY}` } },
  )
  .then((response) => console.log(response.data.data.call_control_id))
  .catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
