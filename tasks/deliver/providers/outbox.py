"""The file outbox: every message written as one JSON line per provider instead of sent.
For dry runs and for reviewing copy; it never fails and never contacts anyone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tasks.deliver.providers.base import Message, Result


class Outbox:
    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self._file = (directory / f"{name}.jsonl").open("a", encoding="utf-8")

    async def send(self, message: Message) -> Result:
        record = dataclasses.asdict(message)
        record["send_at"] = message.send_at.isoformat() if message.send_at else None
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        return Result("sent", provider_id=f"outbox:{message.ref}")

    async def aclose(self) -> None:
        self._file.close()
