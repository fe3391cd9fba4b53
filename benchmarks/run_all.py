"""`make bench`: run every benchmarks/bench_*.py in turn and print their markdown tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failures = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n<!-- {script.name} -->", flush=True)
        completed = subprocess.run([sys.executable, str(script)], cwd=HERE)
        failures += completed.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
