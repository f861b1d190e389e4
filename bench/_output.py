"""What every benchmark script does with its `--output`: the results as indented JSON."""

import json
from pathlib import Path
from typing import Any, Optional


def write_json(path: Optional[Path], result: Any) -> None:
    """Write `result` to `path` (folders created) and say so; nothing without a path."""
    if not path:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"✔ {path}")
