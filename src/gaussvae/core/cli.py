"""What every stage script shares: logging set-up and one-line errors for bad input."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from gaussvae.core.errors import UserError

# Errors whose message is written for users: printed as one line, exit code 2, no traceback.
USER_ERRORS = (UserError, FileNotFoundError)


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    return parser


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's ``main`` with logging configured; user errors become one line on stderr."""
    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(levelname)s %(message)s")
    try:
        main()
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"[{name}] interrupted; no partial output was written", file=sys.stderr)
        sys.exit(130)
