"""Where footsort keeps its files: platformdirs locations, overridable by FOOTSORT_HOME for tests."""

from __future__ import annotations

import os
from pathlib import Path

APP = "footsort"


def _base(kind: str) -> Path:
    home = os.environ.get("FOOTSORT_HOME")
    if home:
        return Path(home) / kind
    import platformdirs

    getter = {
        "config": platformdirs.user_config_dir,
        "data": platformdirs.user_data_dir,
        "cache": platformdirs.user_cache_dir,
        "log": platformdirs.user_log_dir,
    }[kind]
    return Path(getter(APP, appauthor=False))


def config_dir() -> Path:
    """Folder of config.toml."""
    return _base("config")


def data_dir() -> Path:
    """Folder of the journal and the model versions."""
    return _base("data")


def cache_dir() -> Path:
    """Folder of the feature cache."""
    return _base("cache")


def log_dir() -> Path:
    """Folder of the rotating log file."""
    return _base("log")


def config_file() -> Path:
    """The config file path (FOOTSORT_CONFIG overrides)."""
    env = os.environ.get("FOOTSORT_CONFIG")
    return Path(env) if env else config_dir() / "config.toml"


def models_dir() -> Path:
    """Folder holding one file per model version."""
    return data_dir() / "models"


def runtime_dir() -> Path:
    """Folder of the files a running review page leaves for `footsort ui --url` (as Jupyter's runtime dir)."""
    return data_dir() / "runtime"


def journal_file() -> Path:
    """The SQLite journal of every move."""
    return data_dir() / "journal.sqlite3"
