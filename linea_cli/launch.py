"""The `linea` script: a Tab press is answered before anything heavy is imported, when it can be
(linea_cli.completion_fast); everything else goes to the command tree (linea_cli.cli.main)."""

from __future__ import annotations

import os


def main() -> None:
    if "_LINEA_COMPLETE" in os.environ:
        from linea_cli.completion_fast import answered

        if answered():
            return
    from linea_cli.cli import main as run

    run()
