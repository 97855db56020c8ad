#!/usr/bin/env python3
"""Greps everything a demo run wrote for its secrets (issue 7: secrets never in logs).

    python3 scripts/demo/secrets_in_logs.py .cache/demo/<run>

Every value in the run's secrets.json (API keys, admin keys, the HS256 secret,
also as raw-bytes hex and standard base64) is searched for in every file of the
run folder except the inputs that must hold them (secrets.json, .dev.vars,
lambda.env, the rendered configs) and wrangler's local storage. Any
JWT-shaped string (a bearer token) is reported too. Exit 1 on a finding.
"""

import base64
import binascii
import json
import re
import sys
from pathlib import Path

# Files that are the secrets' home, not logs or outputs.
INPUTS = {"secrets.json", ".dev.vars", "lambda.env", "gateway.toml", "wrangler.toml"}
# wrangler dev's Durable Object / Cache API storage: request data, not logs.
SKIP_DIRS = {"wrangler-state"}
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


def needles(secrets):
    """Each secret as text, plus the encodings of decoded key material."""
    found = {}
    for name, value in secrets.items():
        if not isinstance(value, str) or len(value) < 12:
            continue
        found[f"{name}"] = value.encode()
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) >= 16:
            found[f"{name} (hex)"] = raw.hex().encode()
            found[f"{name} (base64)"] = base64.b64encode(raw).rstrip(b"=")
    return found


def scanned_files(run):
    for path in sorted(run.rglob("*")):
        rel = path.relative_to(run)
        if not path.is_file() or rel.parts[0] in SKIP_DIRS or path.name in INPUTS:
            continue
        yield path, rel


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: secrets_in_logs.py RUN_DIR")
    run = Path(sys.argv[1])
    secrets = json.loads((run / "secrets.json").read_text())
    search = needles(secrets)
    findings, files, size = [], 0, 0
    for path, rel in scanned_files(run):
        data = path.read_bytes()
        files += 1
        size += len(data)
        for name, needle in search.items():
            if needle in data:
                findings.append(f"{rel}: contains {name}")
        if JWT.search(data):
            findings.append(f"{rel}: contains a JWT-shaped string (a bearer token?)")
    for f in findings:
        print(f"==> [secrets] FOUND {f}", file=sys.stderr)
    print(
        f"==> [secrets] searched {files} files ({size // 1024} KiB) of {run} for "
        f"{len(search)} secret forms and bearer tokens: {len(findings)} findings"
    )
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
