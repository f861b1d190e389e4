"""Run a command and record its wall time: python scripts/timed.py OUT.json -- CMD ARGS...

Used by project.yml so that benchmark tables can report training wall time."""

import json
import subprocess
import sys
import time
from pathlib import Path


def main(argv) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cmd = Path(argv[0]), argv[2:]
    start = time.perf_counter()
    rc = subprocess.call(cmd)
    seconds = time.perf_counter() - start
    if rc == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"command": " ".join(cmd), "seconds": round(seconds, 1)}, indent=2) + "\n")
        print(f"✔ {seconds / 60:.1f} min, written to {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
