"""Make Prefect run offline and keep its files inside Cadencia's state directory.

Prefect reads its settings from the environment when it is imported, so this must run before
the first `import prefect`: the `flows` and `tasks` packages call it from their `__init__`.
A user's own PREFECT_* variables always win (setdefault).
"""

from __future__ import annotations

import os
from pathlib import Path

from config.settings import get_settings


def configure_prefect_env() -> None:
    try:
        prefect_home = get_settings().prefect_home
    except Exception:  # invalid settings are reported by the command that needs them
        prefect_home = (
            Path(os.environ.get("CADENCIA_STATE_DIR", ".cadencia")) / "prefect"
        ).resolve()
    os.environ.setdefault("PREFECT_HOME", str(prefect_home))
    # Prefect creates only the last folder of its home; the state directory may not exist yet.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Flow parameters and logs must not carry PII; results are not persisted by default.
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
