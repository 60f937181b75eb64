"""loguru setup: readable lines on stderr, optional JSON lines, a rotating file in the log dir.

Every record goes through `clean_record` first: secrets redacted and control characters escaped in
the message and in the traceback (footsort.system.safe_text), so no file name can forge a line and no
webhook credential reaches a log. Variable dumps (loguru's diagnose) stay off; the file is 0600.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from footsort.system import paths
from footsort.system.safe_text import shown

if TYPE_CHECKING:
    from footsort.system.config import LogSection

LOG_FILE_NAME = "footsort.log"
_ORDER = ("DEBUG", "INFO", "WARNING", "ERROR")
_SYSLOG_PRIORITY = {"TRACE": 7, "DEBUG": 7, "INFO": 6, "SUCCESS": 5, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
STDERR_FORMAT = "<level>{level: <7}</level> {message}"
FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name}:{line} {message}"


@dataclass(frozen=True)
class LogPlan:
    """Where log lines go and at which level; computed purely from flags and the [log] section."""

    stderr_level: str
    json: bool
    file: Path | None  # None: no log file
    file_level: str = "INFO"
    file_max_mb: int = 10
    file_keep: int = 5


def plan(verbose: bool = False, quiet: bool = False, json: bool = False, file: bool = False,
         settings: "LogSection | None" = None, log_dir: Path | None = None) -> LogPlan:
    """Flags win over the [log] section: --verbose means DEBUG everywhere, --quiet quiets stderr only."""
    level = "DEBUG" if verbose else (settings.level if settings else "INFO")
    stderr_level = max(level, "WARNING", key=_ORDER.index) if quiet else level
    use_file = file or (settings.file if settings else False)
    return LogPlan(
        stderr_level=stderr_level,
        json=json or (settings.json if settings else False),
        file=(log_dir or paths.log_dir()) / LOG_FILE_NAME if use_file else None,
        file_level=level,
        file_max_mb=settings.file_max_mb if settings else 10,
        file_keep=settings.file_keep if settings else 5,
    )


def stderr_is_journal(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """True when stderr is connected to journald (systemd sets JOURNAL_STREAM=device:inode)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return value == f"{st.st_dev}:{st.st_ino}"


def _journal_format(record: Any) -> str:
    # "<6>" lets journald store the right priority (SyslogLevelPrefix=yes is systemd's default)
    return f"\\<{_SYSLOG_PRIORITY.get(record['level'].name, 6)}>{STDERR_FORMAT}\n{{exception}}"  # \< : not a colour tag


def _format_exception(exc: BaseException | None, tb: Any, seen: set[int] | None = None) -> list[str]:
    """Like traceback.format_exception, with each exception's message made safe (one line, no secrets)."""
    if exc is None:
        return []
    seen = set() if seen is None else seen
    seen.add(id(exc))
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += _format_exception(cause, cause.__traceback__, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += _format_exception(context, context.__traceback__, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if tb is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += [shown(line) + "\n" for chunk in traceback.format_tb(tb) for line in chunk.splitlines()]
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    try:
        text = shown(exc)
    except Exception:  # an exception whose str() fails
        text = "<unprintable>"
    lines.append(f"{name}: {text}\n" if text else f"{name}\n")
    return lines


def clean_record(record: Any) -> None:
    """loguru patcher: redact and escape the message; fold the exception in as safe traceback text."""
    message = shown(record["message"])
    exc = record["exception"]
    if exc is not None and exc.value is not None:
        message += "\n" + "".join(_format_exception(exc.value, exc.traceback)).rstrip("\n")
        record["exception"] = None
    record["message"] = message


def _private_opener(path: str, flags: int) -> int:
    """Log files are created 0600: they name the person's files and folders."""
    return os.open(path, flags, 0o600)


def _write_stderr(message: str) -> None:
    # look sys.stderr up at write time, so a swapped stream (tests, click's CliRunner) is honoured
    sys.stderr.write(message)


def setup(verbose: bool = False, quiet: bool = False, json: bool = False, file: bool = False,
          settings: "LogSection | None" = None, keep_progress: bool = False) -> LogPlan:
    """Configure loguru's sinks for this process and return what was set up.

    keep_progress: progress lines (logged with `progress=True` bound, footsort.system.progress) still reach
    stderr when it is quieted, so a command without a terminal shows its progress every few seconds.
    """
    from loguru import logger

    p = plan(verbose=verbose, quiet=quiet, json=json, file=file, settings=settings)
    logger.remove()
    logger.configure(patcher=clean_record)
    safe: dict[str, Any] = dict(diagnose=False, backtrace=False)  # no variable dumps: they hold URLs and secrets
    if keep_progress:
        floor = logger.level(p.stderr_level).no
        safe["filter"] = lambda r: r["level"].no >= floor or bool(r["extra"].get("progress"))
        stderr_level: str | int = min(floor, logger.level("INFO").no)
    else:
        stderr_level = p.stderr_level
    if p.json:
        logger.add(_write_stderr, level=stderr_level, serialize=True, **safe)
    else:
        colorize = not os.environ.get("NO_COLOR") and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        fmt = _journal_format if stderr_is_journal() else STDERR_FORMAT
        logger.add(_write_stderr, level=stderr_level, format=fmt, colorize=colorize, **safe)
    safe.pop("filter", None)
    if p.file is not None:
        for old in p.file.parent.glob(f"{p.file.stem}*{p.file.suffix}*") if p.file.parent.is_dir() else ():
            with suppress(OSError):  # written world-readable by an older footsort (rotated ones too)
                os.chmod(old, 0o600)
        logger.add(
            p.file, level=p.file_level, format=FILE_FORMAT, serialize=p.json, encoding="utf-8",
            rotation=f"{p.file_max_mb} MB", retention=p.file_keep, delay=True, opener=_private_opener, **safe,
        )
    return p
