"""Docker HEALTHCHECK: exit 0 when the API answers /readyz with 200 (stdlib only, no curl in the image)."""

import os
import sys
import urllib.request

port = os.environ.get("CREDIT_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=4) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
    print(f"readyz: {exc}", file=sys.stderr)
    sys.exit(1)
