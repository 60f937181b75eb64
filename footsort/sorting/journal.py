"""The record of every move: SQLite (WAL) in the data dir, written intent-first so crashes can be repaired.

A move is a row that is inserted as `pending` (committed) before anything on disk changes, and
marked `done`, `aborted` or `vanished` after. Rows left `pending` by a process that died are
"orphans"; footsort.sorting.sorter.recover() looks at the disk and settles each one. Every process that
writes rows holds an advisory lock on `runs/<run>.lock`, so a live process's pending rows are never
mistaken for orphans by another footsort running at the same time.

Paths are stored losslessly: as TEXT when they are valid UTF-8 (nearly always), else as the raw bytes
of the name (a BLOB; names from old cameras and other systems). The journal is checked when opened;
a damaged one stops footsort with the command that moves it aside (nothing is deleted).
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, Mapping, Sequence

from footsort.errors import FootsortError
from footsort.system import paths

if TYPE_CHECKING:
    from footsort.model.prediction import Prediction

Action = Literal["sort", "review", "failed", "duplicate", "undo"]
State = Literal["pending", "done", "aborted", "vanished"]
Method = Literal["rename", "copy", "none"]
MOVES: tuple[str, ...] = ("sort", "review", "failed")  # actions that moved a file out of an inbox
# a finished, not undone move of some content into a class or review folder (what the library holds)
_PLACED = "state = 'done' AND undone_by IS NULL AND action IN ('sort', 'review')"
_BY_MODEL = "model_version != ''"  # a person's decisions (footsort review, the page) have no model version
_PARAMS = 400  # SQLite host parameters per query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    method TEXT NOT NULL DEFAULT 'none',
    hash TEXT,
    size INTEGER,
    source TEXT NOT NULL,
    destination TEXT,
    temp TEXT,
    label TEXT NOT NULL DEFAULT '',
    confidence REAL,
    probabilities TEXT NOT NULL DEFAULT '{}',
    model_version TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL,
    finished REAL,
    undo_of INTEGER,
    undone_by INTEGER
);
CREATE INDEX IF NOT EXISTS actions_hash ON actions(hash);
CREATE INDEX IF NOT EXISTS actions_destination ON actions(destination);
CREATE INDEX IF NOT EXISTS actions_source ON actions(source);
CREATE INDEX IF NOT EXISTS actions_state ON actions(state);
"""


@dataclass(frozen=True)
class Details:
    """What the model and the decision said about a file (all optional)."""

    label: str = ""
    confidence: float | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)
    model_version: str = ""
    reason: str = ""

    @classmethod
    def of(cls, prediction: Prediction | None, reason: str = "") -> "Details":
        """The details of a decision the model made (`prediction`), or of one it had no say in (None)."""
        if prediction is None:
            return cls(reason=reason)
        return cls(prediction.label, prediction.confidence, dict(prediction.probabilities), prediction.model_version,
                   reason)


@dataclass(frozen=True)
class Entry:
    """One journal row."""

    id: int
    run: str
    action: str
    state: str
    method: str
    hash: str | None
    size: int | None
    source: Path
    destination: Path | None
    temp: Path | None
    details: Details
    started: float
    finished: float | None
    undo_of: int | None
    undone_by: int | None


def to_db(value: Any) -> Any:
    """A value as SQLite stores it: text that is not valid UTF-8 (a name's undecodable bytes) as its bytes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:
                return os.fsencode(value)
            except UnicodeEncodeError:  # a lone surrogate that no file name holds
                return value.encode("utf-8", "backslashreplace")
    return value


def from_db(value: Any) -> Any:
    """The inverse of to_db: a stored name's bytes back to (surrogateescape) text."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def path_from_db(value: Any) -> Path | None:
    """A stored path column as a Path (None when empty)."""
    return Path(from_db(value)) if value else None


def probabilities_from_db(value: Any) -> dict[str, float]:
    """A stored probabilities column as {class: probability} ({} when it is empty or not such a table)."""
    try:
        return {str(k): float(v) for k, v in json.loads(value or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _entry(row: sqlite3.Row) -> Entry:
    text = lambda key: from_db(row[key])  # noqa: E731
    return Entry(
        id=row["id"], run=text("run"), action=row["action"], state=row["state"], method=row["method"],
        hash=row["hash"], size=row["size"], source=Path(text("source")), destination=path_from_db(row["destination"]),
        temp=path_from_db(row["temp"]),
        details=Details(text("label"), row["confidence"], probabilities_from_db(row["probabilities"]),
                        text("model_version"), text("reason")),
        started=row["started"], finished=row["finished"], undo_of=row["undo_of"], undone_by=row["undone_by"],
    )


def aside_command(path: Path) -> str:
    """The shell command that moves a damaged journal (with its -wal/-shm files) aside, keeping it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moves = [f"mv -n {shlex.quote(str(path))} {shlex.quote(f'{path}.damaged-{stamp}')}"]
    for suffix in ("-wal", "-shm"):
        extra = Path(f"{path}{suffix}")
        if extra.exists():
            moves.append(f"mv -n {shlex.quote(str(extra))} {shlex.quote(f'{path}.damaged-{stamp}{suffix}')}")
    return " && ".join(moves)


class JournalDamaged(FootsortError):
    """The journal file is not a readable SQLite database; `command` moves it aside (keeping it)."""

    def __init__(self, path: Path, detail: str, command: str) -> None:
        from footsort.system.safe_text import printable

        self.path, self.detail, self.command = path, detail, command
        super().__init__(
            f"the journal {printable(path)} is damaged ({printable(detail)}); footsort cannot tell what it moved "
            f"before. Move it aside to start a new journal (it is kept, nothing is deleted): {command}")


def damaged(path: Path, detail: object) -> JournalDamaged:
    """The one-line error for a journal SQLite cannot read, with the command that moves it aside."""
    return JournalDamaged(path, str(detail), aside_command(path))


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """What SQLite's quick_check finds wrong (its first finding, one line), or None when every page reads."""
    try:
        found = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
    except sqlite3.DatabaseError as exc:
        if not _is_damage(exc):
            raise
        return str(exc)
    if found == ["ok"]:
        return None
    lines = [line for text in found for line in text.splitlines() if line.strip() and not line.startswith("***")]
    return (lines[0] if lines else "quick_check failed")[:200]


def _checked(conn: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    """`conn` when the journal passes quick_check; else it is closed and `damaged` raised (after closing,
    so that the command names only the -wal/-shm files that are still there)."""
    try:
        problem = integrity_problem(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise FootsortError(f"cannot read the journal {path}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    if problem is not None:
        conn.close()
        raise damaged(path, problem)
    return conn


def _connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing journal, unchecked (FootsortError when it cannot be opened)."""
    try:
        return sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=30,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise FootsortError(f"cannot open the journal {path}: {exc}") from None


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing journal, checked first (FootsortError when damaged)."""
    return _checked(_connect_ro(path), path)


def _empty() -> sqlite3.Connection:
    """An empty journal in memory: what reading one that does not exist yet finds."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(_SCHEMA)
    return conn


def _has_actions(conn: sqlite3.Connection) -> bool:
    """Whether an opened file holds the journal's table (an empty file does not)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'actions'").fetchone() is not None


class _RunLock:
    """An advisory lock that says "the process owning run X is alive"."""

    def __init__(self, folder: Path, run: str) -> None:
        self.path = folder / f"{run}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks, treat as taken when present
            return not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self, delete: bool = False) -> None:
        """Drop the lock (and the lock file)."""
        if self._fd is not None:
            if delete:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


class Journal:
    """Read and write the journal; one instance per process (thread-safe)."""

    def __init__(self, conn: sqlite3.Connection, run: str, lock_dir: Path | None, readonly: bool,
                 path: Path | None = None, *, lenient: bool = False) -> None:
        self._conn = conn
        self.path = path
        self._mutex = threading.RLock()
        self.run = run
        self.readonly = readonly
        self._lenient = lenient  # a read that fails finds nothing (see peek)
        self._lock_dir = lock_dir
        self._run_lock: _RunLock | None = None
        self._claimed: list[_RunLock] = []  # locks of dead runs whose rows this process is repairing

    @classmethod
    def open(cls, path: Path | None = None, readonly: bool = False) -> "Journal":
        """Open (creating when writable) the journal; readonly on a missing file gives an empty one."""
        path = paths.journal_file() if path is None else Path(path)
        run = _new_run()
        if readonly and not path.exists():
            conn = _empty()
        elif readonly:
            conn = connect_readonly(path)
            if not _has_actions(conn):
                conn.close()
                conn = _empty()
        else:
            conn = cls._connect_writable(path)

        conn.row_factory = sqlite3.Row
        journal = cls(conn, run, None if readonly else path.parent / "runs", readonly, path)
        if not readonly:
            journal._run_lock = _RunLock(path.parent / "runs", run)
            journal._run_lock.acquire()
        return journal

    @classmethod
    def peek(cls, path: Path | None = None) -> "Journal":
        """Open read-only and unchecked, for a page that shows what the journal says: one that is missing or
        cannot be opened reads as empty (nothing is created), and a read that fails (locked, damaged) finds nothing."""
        path = paths.journal_file() if path is None else Path(path)
        conn = None
        if path.exists():
            with suppress(FootsortError):
                conn = _connect_ro(path.resolve())
        conn = conn or _empty()
        conn.row_factory = sqlite3.Row
        return cls(conn, _new_run(), None, True, path, lenient=True)

    @staticmethod
    def _connect_writable(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise FootsortError(f"cannot open the journal {path}: {exc}; check that its folder is writable") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _is_damage(exc):  # not a database at all, or damaged in its first pages
                raise damaged(path, exc) from None
            raise FootsortError(f"cannot open the journal {path}: {exc}; stop the other footsort, free disk space, "
                                "or make the file writable") from None
        _checked(conn, path)
        try:
            conn.execute("PRAGMA synchronous=FULL")  # an intent must be on disk before the move it announces
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise FootsortError(f"cannot open the journal {path}: {exc}; stop the other footsort, free disk space, "
                                "or make the file writable") from None
        return conn

    def close(self) -> None:
        """Close the database and release this run's lock."""
        with self._mutex:
            self._conn.close()
            for lock in [*self._claimed, *([self._run_lock] if self._run_lock else [])]:
                lock.release(delete=True)
            self._claimed, self._run_lock = [], None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def _write(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        if self.readonly:
            raise FootsortError("internal: the journal was opened read-only (dry run)")
        with self._mutex:
            try:
                return self._conn.execute(sql, tuple(map(to_db, args)))
            except sqlite3.DatabaseError as exc:
                if _is_damage(exc):
                    raise damaged(self.path or Path(":memory:"), exc) from None
                raise FootsortError(f"cannot write the journal {self.path}: {exc}; nothing more is moved until "
                                    "this is fixed (free disk space, or stop the other footsort)") from exc
            except sqlite3.Error as exc:  # disk full, locked for too long, damaged: stop rather than move unrecorded
                raise FootsortError(f"cannot write the journal {self.path}: {exc}; nothing more is moved until "
                                    "this is fixed (free disk space, or stop the other footsort)") from exc

    def begin(self, action: Action, source: Path, destination: Path | None, *, method: Method = "none",
              hash: str | None = None, size: int | None = None, temp: Path | None = None,
              details: Details = Details(), undo_of: int | None = None) -> int:
        """Record the intent to move `source` to `destination` (committed before returning); its id."""
        cur = self._write(
            "INSERT INTO actions (run, action, state, method, hash, size, source, destination, temp, label,"
            " confidence, probabilities, model_version, reason, started, undo_of)"
            " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.run, action, method, hash, size, str(source), _opt(destination), _opt(temp), details.label,
             details.confidence, json.dumps(dict(details.probabilities)), details.model_version, details.reason,
             time.time(), undo_of),
        )
        return int(cur.lastrowid)

    def redirect(self, entry_id: int, destination: Path) -> None:
        """A pending move will use another destination name (the first one was taken meanwhile)."""
        self._write("UPDATE actions SET destination = ? WHERE id = ?", (str(destination), entry_id))

    def finish(self, entry_id: int, state: State, reason: str | None = None) -> None:
        """Settle a pending row; a finished undo also marks the row it undid."""
        with self._mutex, self._lazy_sync():
            self._write("BEGIN IMMEDIATE")
            try:
                self._write(
                    "UPDATE actions SET state = ?, finished = ?, reason = COALESCE(?, reason) WHERE id = ?",
                    (state, time.time(), reason, entry_id),
                )
                if state == "done":
                    self._write(
                        "UPDATE actions SET undone_by = ? WHERE id = (SELECT undo_of FROM actions WHERE id = ?)",
                        (entry_id, entry_id),
                    )
                self._write("COMMIT")
            except BaseException:
                with suppress(FootsortError):
                    self._write("ROLLBACK")
                raise

    @contextmanager
    def _lazy_sync(self) -> Iterator[None]:
        """Commit without waiting for the disk: fine for a settled row, since recovery reads the disk
        for any row still pending, and the next intent's fsync of the WAL makes it durable anyway."""
        self._write("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._write("PRAGMA synchronous=FULL")

    def note(self, action: Action, source: Path, *, hash: str | None = None, size: int | None = None,
             destination: Path | None = None, details: Details = Details()) -> int:
        """Record something that moved nothing (a duplicate left in place), already done."""
        with self._mutex, self._lazy_sync():
            entry_id = self.begin(action, source, destination, hash=hash, size=size, details=details)
            self.finish(entry_id, "done")
        return entry_id

    # -- reading -------------------------------------------------------------------------------

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[Entry]:
        with self._mutex:
            try:
                rows = self._conn.execute(sql, tuple(map(to_db, args))).fetchall()
            except sqlite3.Error as exc:
                if self._lenient:
                    return []
                if isinstance(exc, sqlite3.DatabaseError) and _is_damage(exc):  # in a page quick_check passed over
                    raise damaged(self.path or Path(":memory:"), exc) from None
                raise
            return [_entry(r) for r in rows]

    def get(self, entry_id: int) -> Entry | None:
        """One row by id."""
        rows = self._query("SELECT * FROM actions WHERE id = ?", (entry_id,))
        return rows[0] if rows else None

    def claim_orphans(self) -> list[Entry]:
        """Pending rows whose process is gone, oldest first; their runs stay locked until close()."""
        if self._lock_dir is None:
            return []
        out: list[Entry] = []
        dead: dict[str, bool] = {}
        for entry in self._query("SELECT * FROM actions WHERE state = 'pending' ORDER BY id"):
            if entry.run == self.run:
                continue
            if entry.run not in dead:
                lock = _RunLock(self._lock_dir, entry.run)
                dead[entry.run] = lock.acquire()
                if dead[entry.run]:
                    self._claimed.append(lock)
            if dead[entry.run]:
                out.append(entry)
        return out

    def sorted_copy(self, hash: str) -> Entry | None:
        """The latest file with this content that footsort put in a class or review folder and did not undo."""
        rows = self._query(
            f"SELECT * FROM actions WHERE hash = ? AND {_PLACED} ORDER BY id DESC LIMIT 1", (hash,))
        return rows[0] if rows else None

    def placed(self) -> list[Entry]:
        """Every finished, not undone move of known content into a class or review folder, oldest first."""
        return self._query(f"SELECT * FROM actions WHERE {_PLACED} AND hash IS NOT NULL ORDER BY id")

    def _latest_placed(self, column: str, values: Sequence[str], where: str = "") -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for i in range(0, len(values), _PARAMS):
            part = values[i:i + _PARAMS]
            for e in self._query(f"SELECT * FROM actions WHERE {_PLACED}{where} AND {column} IN"
                                 f" ({', '.join('?' * len(part))}) ORDER BY id", part):
                out[str(e.destination) if column == "destination" else str(e.hash)] = e  # by id: the latest wins
        return out

    def placed_at(self, destinations: Sequence[str]) -> dict[str, Entry]:
        """The latest finished, not undone move into a class or review folder per destination path."""
        return self._latest_placed("destination", destinations)

    def decided_by_model(self, hashes: Sequence[str]) -> dict[str, Entry]:
        """The latest finished, not undone move a model decided per content hash."""
        return self._latest_placed("hash", hashes, f" AND {_BY_MODEL}")

    def model_sorts(self, label: str, limit: int) -> list[Entry]:
        """The latest `limit` finished, not undone sorts into `label` that a model decided, newest first."""
        return self._query(f"SELECT * FROM actions WHERE {_PLACED} AND action = 'sort' AND {_BY_MODEL}"
                           " AND label = ? ORDER BY id DESC LIMIT ?", (label, limit))

    def moved_by(self, run: str, destination: Path) -> int | None:
        """The id of run `run`'s latest finished move to `destination`, or None."""
        rows = self._query("SELECT * FROM actions WHERE run = ? AND destination = ? AND state = 'done'"
                           " ORDER BY id DESC LIMIT 1", (run, str(destination)))
        return rows[0].id if rows else None

    def left_in_place(self, path: Path, hash: str) -> Entry | None:
        """The row that deliberately left this content at `path` (undone there, or a skipped duplicate)."""
        rows = self._query(
            "SELECT * FROM actions WHERE hash = ? AND state = 'done' AND"
            " ((action = 'undo' AND destination = ?) OR (action = 'duplicate' AND source = ?))"
            " ORDER BY id DESC LIMIT 1",
            (hash, str(path), str(path)),
        )
        return rows[0] if rows else None

    def recent(self, limit: int = 20) -> list[Entry]:
        """The latest rows, newest first."""
        return self._query("SELECT * FROM actions ORDER BY id DESC LIMIT ?", (limit,))

    def undoable(self, *, last: int | None = None, since: float | None = None,
                 paths: Iterable[Path] = ()) -> list[Entry]:
        """Finished moves not yet undone: the last N, those since a time, those at/under paths, or the last run's."""
        base = (f"SELECT * FROM actions WHERE state = 'done' AND undone_by IS NULL"
                f" AND action IN ({', '.join(repr(a) for a in MOVES)})")
        wanted = [str(p) for p in paths]
        if wanted:
            rows = self._query(base + " ORDER BY id DESC")
            return [e for e in rows if e.destination and any(_within(e.destination, w) for w in wanted)]
        if last is not None:
            return self._query(base + " ORDER BY id DESC LIMIT ?", (last,))
        if since is not None:
            return self._query(base + " AND finished >= ? ORDER BY id DESC", (since,))
        latest = self._query(base + " ORDER BY id DESC LIMIT 1")
        if not latest:
            return []
        return self._query(base + " AND run = ? ORDER BY id DESC", (latest[0].run,))


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """SQLite's words for a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB), as opposed to busy or full."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (11, 26)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _new_run() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _opt(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _within(path: Path, prefix: str) -> bool:
    return str(path) == prefix or str(path).startswith(prefix.rstrip(os.sep) + os.sep)
