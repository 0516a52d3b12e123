"""A stand-in for the many apps that hard-code Telnyx's URL: it dials with the standard library only, as
written for production (no base URL option, no emulator in sight), and prints the new call's id.

Run as is, it talks to https://api.telnyx.com; with HTTPS_PROXY and SSL_CERT_FILE set it talks to the emulator
(tests/e2e/test_zero_code.py)."""

import json
import os
import urllib.request

TELNYX_API = "https://api.telnyx.com/v2"  # hard-coded, as in most apps

request = urllib.request.Request(
    f"{TELNYX_API}/calls",
    data=json.dumps({"connection_id": "1", "from": "+13125550111", "to": "+13125550122"}).encode(),
    headers={"Authorization": f"Bearer {os.environ['TELNYX_API_KEY']}", "Content-Type": "application/json"},
    method="POST",
)
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.load(response)["data"]["call_control_id"])
