"""Plugin discovery and event dispatch.

A plugin is a module exposing `register(api)`; it subscribes callbacks to event names with
`api.on("file_sorted", callback)`. Plugins are found in two places (the first wins on a name clash):
folders named in `plugins.paths`, then the entry-point group `footsort.plugins`, where footsort registers
its shipped plugins (the repository's plugins/ folder, installed as footsort.plugins.bundled). Only those named in `plugins.enabled` are imported.

Each enabled plugin gets its own background thread and queue, so a slow plugin never blocks sorting or
the other plugins. A plugin that fails to load is logged and skipped; one whose callback raises is
logged with its name, and disabled after `max_failures` failures in a row.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, TypeVar

from loguru import logger

from footsort.plugins.events import EVENT_NAMES, Event
from footsort.system import paths
from footsort.system.config import Config, parse_section

ENTRY_POINT_GROUP = "footsort.plugins"
SHIPPED_PACKAGE = "footsort.plugins.bundled"  # the repository's plugins/ folder, installed under footsort's name
MAX_FAILURES = 3
QUEUE_SIZE = 1000

Callback = Callable[[Event], Any]
Register = Callable[["PluginAPI"], Any]
T = TypeVar("T")


@dataclass(frozen=True)
class PluginSource:
    """A plugin footsort can see: its name, where it was found, and how to import it."""

    name: str
    origin: str
    load: Callable[[], Any]  # returns the module (or the register function itself)


def _folder_plugins(folder: Path) -> Iterable[tuple[str, Path]]:
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.suffix == ".py" and entry.is_file():
            yield entry.stem, entry
        elif (entry / "__init__.py").is_file():
            yield entry.name, entry / "__init__.py"


def _import_file(name: str, file: Path) -> ModuleType:
    module_name = f"footsort_plugin_{name}"
    is_package = file.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        module_name, file, submodule_search_locations=[str(file.parent)] if is_package else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and relative imports look the module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def plugin_folders(cfg: Config) -> list[Path]:
    """The folders named in plugins.paths; relative ones are taken from the config file's folder."""
    base = paths.config_file().parent
    return [base / Path(p).expanduser() for p in cfg.plugins.paths]


def discover(folders: Iterable[Path] = ()) -> dict[str, PluginSource]:
    """Every plugin footsort can see, by name: config folders first, then entry points (the shipped ones among them)."""
    found: dict[str, PluginSource] = {}
    for folder in folders:
        for name, file in _folder_plugins(folder):
            found.setdefault(name, PluginSource(name, f"{file}", lambda n=name, f=file: _import_file(n, f)))
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        shipped = ep.value.startswith(f"{SHIPPED_PACKAGE}.")
        found.setdefault(ep.name, PluginSource(ep.name, f"shipped {ep.value}" if shipped else f"entry point {ep.value}", ep.load))
    return found


def register_function(source: PluginSource) -> Register:
    """Import a plugin and return its register(api) function."""
    loaded = source.load()
    register = loaded if callable(loaded) and not isinstance(loaded, ModuleType) else getattr(loaded, "register", None)
    if not callable(register):
        raise TypeError(f"{source.origin} has no register(api) function")
    return register


def shipped_settings() -> dict[str, Any]:
    """Default settings (a dataclass instance) of each shipped plugin that declares `Settings`."""
    out: dict[str, Any] = {}
    for name, source in discover().items():
        if source.origin.startswith("shipped "):
            try:
                settings_cls = getattr(source.load(), "Settings", None)
            except Exception:  # a broken plugin only loses its entry in `config init`
                continue
            if settings_cls is not None:
                out[name] = settings_cls()
    return out


class PluginLog:
    """A plugin's logger: every line starts with `plugin <name>:`."""

    def __init__(self, name: str) -> None:
        self._prefix = f"plugin {name}: "

    def _log(self, level: str, message: str, *args: Any) -> None:
        logger.opt(depth=2).log(level, self._prefix + message, *args)

    def debug(self, message: str, *args: Any) -> None:
        """Log a debug line."""
        self._log("DEBUG", message, *args)

    def info(self, message: str, *args: Any) -> None:
        """Log an info line."""
        self._log("INFO", message, *args)

    def warning(self, message: str, *args: Any) -> None:
        """Log a warning."""
        self._log("WARNING", message, *args)

    def error(self, message: str, *args: Any) -> None:
        """Log an error."""
        self._log("ERROR", message, *args)


class PluginAPI:
    """What `register(api)` receives: subscribe to events, read settings and the configuration, log."""

    def __init__(self, name: str, config: Config, settings: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.config = config
        self.settings: Mapping[str, Any] = dict(settings or {})  # the [plugins.<name>] table as written
        self.log = PluginLog(name)
        self.subscriptions: dict[str, list[Callback]] = {}

    def on(self, event: str | type[Event], callback: Callback) -> Callback:
        """Call `callback(event)` (in the plugin's own thread) for every event of that name or class."""
        name = event if isinstance(event, str) else event.name
        if name not in EVENT_NAMES:
            raise ValueError(f"plugin {self.name} subscribed to unknown event {name!r}; events are {', '.join(EVENT_NAMES)}")
        self.subscriptions.setdefault(name, []).append(callback)
        return callback

    def settings_as(self, cls: type[T]) -> T:
        """The [plugins.<name>] table checked against the dataclass `cls` (unknown keys and bad values raise ConfigError)."""
        return parse_section(cls, self.settings, f"plugins.{self.name}", f"config file {paths.config_file()}")


_STOP = object()


class _Worker:
    """One plugin's queue and thread; counts failures in a row and disables the plugin after too many."""

    def __init__(self, name: str, subscriptions: Mapping[str, list[Callback]], max_failures: int, queue_size: int) -> None:
        self.name = name
        self.subscriptions = subscriptions
        self.max_failures = max_failures
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.failures = 0
        self.disabled = False
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name=f"footsort-plugin-{name}", daemon=True)
        self.thread.start()

    def offer(self, event: Event) -> None:
        if self.disabled or event.name not in self.subscriptions:
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning("plugin {} is too slow: {} event(s) dropped so far (queue of {} full)",
                               self.name, self.dropped, self.queue.maxsize)

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            if event is _STOP:
                return
            for callback in self.subscriptions.get(event.name, ()):
                if self.disabled:
                    break
                self._deliver(callback, event)

    def _deliver(self, callback: Callback, event: Event) -> None:
        try:
            callback(event)
        except (Exception, SystemExit) as exc:
            self.failures += 1
            logger.opt(exception=exc).error("plugin {} failed on {} ({} in a row): {}",
                                            self.name, event.name, self.failures, exc)
            if self.failures >= self.max_failures:
                self.disabled = True
                logger.error("plugin {} disabled after {} failures in a row; sorting goes on without it. "
                             "Fix it (or remove it from plugins.enabled) and restart footsort", self.name, self.failures)
        else:
            self.failures = 0

    def ask_to_stop(self, deadline: float) -> None:
        try:
            self.queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            pass

    def join(self, deadline: float) -> None:
        self.thread.join(max(0.0, deadline - time.monotonic()))
        if self.thread.is_alive():
            logger.warning("plugin {} still busy at shutdown; about {} event(s) not delivered",
                           self.name, self.queue.qsize())


class PluginHost:
    """Delivers events to enabled plugins; a failing plugin is logged and never stops sorting."""

    def __init__(self, plugins: Mapping[str, Register] | None = None, config: Config | None = None,
                 problems: Mapping[str, str] | None = None, max_failures: int = MAX_FAILURES,
                 queue_size: int = QUEUE_SIZE) -> None:
        config = config or Config()
        self.problems: dict[str, str] = dict(problems or {})  # plugin name -> why it is not running
        self._workers: dict[str, _Worker] = {}
        self._closed = False
        for name, register in (plugins or {}).items():
            api = PluginAPI(name, config, config.plugins.settings.get(name))
            try:
                register(api)
            except (Exception, SystemExit) as exc:
                self.problems[name] = f"register() failed: {exc}"
                logger.opt(exception=exc).error("plugin {} could not start and is skipped: {}", name, exc)
                continue
            if api.subscriptions:
                self._workers[name] = _Worker(name, api.subscriptions, max_failures, queue_size)
            logger.debug("plugin {} started, listening to {}", name, ", ".join(api.subscriptions) or "nothing")

    @classmethod
    def from_config(cls, cfg: Config, **kwargs: Any) -> "PluginHost":
        """Find, import and start the plugins named in plugins.enabled; problems are logged, never raised."""
        folders = plugin_folders(cfg)
        found = discover(folders) if cfg.plugins.enabled else {}
        registers: dict[str, Register] = {}
        problems: dict[str, str] = {}
        for name in dict.fromkeys(cfg.plugins.enabled):
            source = found.get(name)
            try:
                if source is None:
                    looked = [str(f) for f in folders] + [f"entry points {ENTRY_POINT_GROUP}"]
                    raise LookupError(f"not found; looked in {', '.join(looked)}; known plugins: {', '.join(sorted(found)) or 'none'}")
                registers[name] = register_function(source)
            except Exception as exc:
                problems[name] = str(exc)
                logger.opt(exception=not isinstance(exc, LookupError) and exc).error(
                    "plugin {} could not be loaded and is skipped: {}", name, exc)
        return cls(registers, config=cfg, problems=problems, **kwargs)

    @property
    def running(self) -> tuple[str, ...]:
        """Names of the plugins that are listening and not disabled."""
        return tuple(name for name, w in self._workers.items() if not w.disabled)

    def emit(self, event: Event) -> None:
        """Queue one event for every subscriber; returns at once (a full queue drops the event with a warning)."""
        if self._closed:
            logger.debug("event {} emitted after the plugin host closed; ignored", event.name)
            return
        for worker in self._workers.values():
            worker.offer(event)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver the events already queued (waiting at most `timeout` seconds in all), then stop the threads."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        for worker in self._workers.values():
            worker.ask_to_stop(deadline)
        for worker in self._workers.values():
            worker.join(deadline)

    def __enter__(self) -> "PluginHost":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
