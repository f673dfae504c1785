"""Run the provider sandbox (docs/sandbox.md):
`python -m sandbox --port 8787 --webhook-url http://127.0.0.1:8000/webhooks`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sandbox.server import serve


def _json_arg(value: str) -> Any:
    """Inline JSON, or @path to a JSON file."""
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    return json.loads(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--webhook-url", help="base URL for status webhooks (/whatsapp, ...)")
    parser.add_argument("--meta-app-secret", default="sandbox-meta-secret")
    parser.add_argument("--rbm-client-token", default="sandbox-rbm-token")
    parser.add_argument("--faults", type=_json_arg, help="fault config: JSON or @file.json")
    parser.add_argument(
        "--templates", type=_json_arg, help='approved WhatsApp templates {"name": {"en": 2}}'
    )
    parser.add_argument("--record-file", help="also append accepted messages to this JSONL")
    parser.add_argument("--no-webhooks", action="store_true", help="post no webhook at all")
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        webhook_url=args.webhook_url,
        meta_app_secret=args.meta_app_secret,
        rbm_client_token=args.rbm_client_token,
        faults=args.faults,
        record_file=args.record_file,
        templates=args.templates,
        webhooks=not args.no_webhooks,
    )


if __name__ == "__main__":
    main()
