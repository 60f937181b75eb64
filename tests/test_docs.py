"""The docs stay true (issue 9 item 18): every `footsort ...` command they show parses, the safe ones run,
the doctor example matches real output, settings blocks show real keys and defaults, env names exist."""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
from pathlib import Path

import click
import pytest
import tomllib
from click.testing import CliRunner
from loguru import logger

from footsort.cli import main
from footsort.system import config

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)
INLINE = re.compile(r"`(footsort [^`]+)`")
DEFAULTS_SHOWN_IN = ("config.md", "daemon.md")  # their [section] blocks list defaults
SAFE = (("config",), ("doctor",), ("log",), ("undo", "--dry-run"), ("service", "install", "--dry-run"),
        ("models", "list"))
CHECK_LINE = re.compile(r"^(ok|info|warn|fail)\s+(\w+)\s", re.M)


NOT_YET = re.compile(r"^#+ [^\n]*not (?:there )?yet[^\n]*\n.*?(?=^#|\Z)", re.S | re.M | re.I)


def commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `footsort`) for every footsort command line in the docs; `where` starts with
    "inline" for a command named in a sentence (it may leave out its arguments). A section headed
    "Not there yet" names what does not exist yet, and is left out."""
    found: list[tuple[str, list[str]]] = []
    for doc in DOCS:
        text = NOT_YET.sub("", doc.read_text(encoding="utf-8"))
        lines: list[tuple[str, str]] = []
        for block in FENCE.finditer(text):
            if block.group(2) in ("python", "toml", "yaml", "text", "json"):
                continue
            lines += [("", line) for line in block.group(3).replace("\\\n", " ").splitlines()]
        lines += [("inline ", re.sub(r"\[(-[^\]]+)\]", r"\1", span)) for span in INLINE.findall(text)]  # [--json]
        for kind, line in lines:
            line = line.strip().removeprefix("$ ")
            for segment in re.split(r"&&|\|", line):
                try:
                    words = shlex.split(segment, comments=True)
                except ValueError:
                    continue
                while words and re.match(r"^[A-Z_]+=", words[0]):
                    words = words[1:]  # FOOTSORT_SORT_THRESHOLD=0.9 footsort config show
                if words[:1] == ["footsort"] and not any("$" in w for w in words):
                    found.append((f"{kind}{doc.name}: {line}", words[1:]))
    return found


COMMANDS = commands()


def parse_only(argv: list[str]) -> None:
    """Parse argv as `footsort` would, down to the last subcommand, without running anything."""
    cmd: click.Command = main
    ctx = main.make_context("footsort", list(argv))
    while isinstance(cmd, click.Group):
        rest = [*ctx._protected_args, *ctx.args]  # type: ignore[attr-defined]
        if not rest:
            return
        name, sub, args = cmd.resolve_command(ctx, rest)
        assert sub is not None
        ctx, cmd = sub.make_context(name or "", args, parent=ctx), sub


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    logger.remove()  # the CLI pointed loguru at CliRunner's (now closed) stderr
    logger.add(sys.stderr, level="WARNING")


def test_the_docs_show_footsort_commands() -> None:
    shown = {tuple(argv[:1]) for _, argv in COMMANDS}
    assert {("watch",), ("sort",), ("undo",), ("log",), ("config",), ("doctor",), ("service",)} <= shown


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_command_in_the_docs_parses(where: str, argv: list[str]) -> None:
    try:
        parse_only(argv)
    except click.exceptions.Exit:
        pass  # --help, --version
    except (click.MissingParameter, click.exceptions.NoArgsIsHelpError):
        assert where.startswith("inline"), where  # a command named in a sentence, without its arguments
    except click.UsageError as exc:
        pytest.fail(f"{where}: footsort {' '.join(argv)} is rejected: {exc.format_message()}")


def test_the_safe_commands_in_the_docs_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_cli: dict) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    (home / "Pictures" / "inbox").mkdir(parents=True)
    ran = 0
    for where, argv in COMMANDS:
        if not any(tuple(argv[: len(s)]) == s for s in SAFE) and "--help" not in argv and "-h" not in argv:
            continue
        if argv[:1] == ["doctor"]:
            continue  # below, once: it loads the model
        args = [a.replace("~", str(home), 1) if a.startswith("~") else a for a in argv]
        if args[:2] == ["config", "init"] and "--force" not in args:
            (home / "cfg").mkdir(exist_ok=True)
            monkeypatch.setenv("FOOTSORT_CONFIG", str(home / "cfg" / f"{ran}.toml"))  # a fresh file each time
        result = CliRunner().invoke(main, args, obj={**fake_cli, "platform": "linux"}, catch_exceptions=False)
        monkeypatch.delenv("FOOTSORT_CONFIG", raising=False)
        assert result.exit_code == 0, f"{where}: {result.output}"
        ran += 1
    assert ran >= 8


def test_the_doctor_example_matches_real_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    example = text[text.index("$ footsort doctor"):]
    example = example[: example.index("```")]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    CliRunner().invoke(main, ["config", "init"])
    result = CliRunner().invoke(main, ["doctor", str(inbox)], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    # the same checks in the same order (how each comes out depends on the machine)
    assert [m[2] for m in CHECK_LINE.finditer(example)] == [m[2] for m in CHECK_LINE.finditer(result.output)]
    last = example.strip().splitlines()[-1]
    assert last == "all good" or "problem(s) found" in last
    assert result.output.strip().splitlines()[-1] == "all good" or "problem(s) found" in result.output


def test_settings_blocks_show_real_keys_and_their_defaults(tmp_path: Path) -> None:
    defaults = dataclasses.asdict(config.Config())
    for doc in DOCS:
        for block in FENCE.finditer(doc.read_text(encoding="utf-8")):
            if block.group(2) != "toml":
                continue
            sections = tomllib.loads(block.group(3))
            if not set(sections) <= set(config.section_types()):
                continue  # not footsort's config (a plugin's pyproject.toml)
            file = tmp_path / "c.toml"
            file.write_text(block.group(3))
            config.load(file, environ={})  # unknown keys and bad values raise
            if doc.name not in DEFAULTS_SHOWN_IN:
                continue
            for section, values in sections.items():
                for key, value in values.items():
                    if isinstance(value, dict):
                        continue
                    want = defaults[section][key]
                    want = list(want) if isinstance(want, tuple) else want
                    assert value == want, f"{doc.name}: [{section}] {key} = {value!r}, but the default is {want!r}"


def test_environment_variables_in_the_docs_exist() -> None:
    known = {config.env_var(f"{s}.{f.name}") for s, t in config.section_types().items()
             for f in dataclasses.fields(t) if f.name != "settings"}
    known |= {"FOOTSORT_HOME", "FOOTSORT_CONFIG", "FOOTSORT_SECTION_KEY", "FOOTSORT_MODEL_BACKBONE_WEIGHTS"}
    for doc in DOCS:
        for name in set(re.findall(r"FOOTSORT_[A-Z0-9_]+", doc.read_text(encoding="utf-8"))):
            assert name in known, f"{doc.name} names {name}, which footsort does not read"
    assert config.load(environ={"FOOTSORT_BACKBONE_WEIGHTS": "a.pth"}).model.backbone_weights == "a.pth"
    assert config.load(environ={"FOOTSORT_MODEL_BACKBONE_WEIGHTS": "b.pth"}).model.backbone_weights == "b.pth"
    assert config.load(environ={"FOOTSORT_BACKBONE_WEIGHTS": "a.pth",
                                "FOOTSORT_MODEL_BACKBONE_WEIGHTS": "b.pth"}).model.backbone_weights == "a.pth"
    assert "env FOOTSORT_BACKBONE_WEIGHTS" in CliRunner().invoke(main, ["config", "init"]).output or \
        "env FOOTSORT_BACKBONE_WEIGHTS" in config.paths.config_file().read_text()


def test_the_architecture_page_names_every_module_and_only_real_ones() -> None:
    """docs/architecture.md's table lists each module of each part, and nothing that does not exist."""
    text = (REPO / "docs" / "architecture.md").read_text()
    for row in re.finditer(r"^\| `footsort/(\w+)/` \|[^|]*\| (.*) \|$", text, re.M):
        part, cell = row.group(1), row.group(2)
        named = {m for m in re.findall(r"`(\w+)`", cell) if not m.startswith("footsort")}
        modules = {p.stem for p in (REPO / "footsort" / part).glob("*.py") if p.stem != "__init__"}
        assert named - modules == set(), f"{part}: named but missing"
        assert modules - named == set(), f"{part}: modules the page does not name"
