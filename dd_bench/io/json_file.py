"""Reading a JSON file a user or an earlier run wrote, with one clear error for each way it can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_file(path: str | Path, *, what: str, missing: str, error: type[Exception]) -> Any:
    """The parsed contents of ``path``; ``error(missing)`` when it is absent and ``error("<what> is not valid
    JSON (...)")`` when it does not parse. ``what`` names the file in messages (e.g. ``"'runs/x/meta.json'"``)."""
    path = Path(path)
    if not path.is_file():
        raise error(missing)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{what} is not valid JSON ({e})") from None
