"""`footsort ui`: the review page in the browser. Starlette and uvicorn are imported only when it runs."""

from __future__ import annotations

from pathlib import Path

import click

from footsort.commands.options import load_config, model_classes, plugin_host
from footsort.errors import FootsortError

DEFAULT_PORT = 8765  # footsort.ui.serving.DEFAULT_PORT (not imported: --help stays light)


@click.command("ui")
@click.argument("inboxes", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets other machines reach the page (token still "
                   "needed), e.g. --host 192.168.1.20.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port (another free one is taken when it is busy; 0: any), e.g. --port 9000.")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the page in the default browser, e.g. footsort ui --open.")
@click.option("--url", "print_url", is_flag=True,
              help="Serve nothing: print the address (with its token) of each review page running now, newest "
                   "first: the service's or `footsort watch --ui`'s, or another `footsort ui`'s. Exit status 1 "
                   "when none runs. E.g. xdg-open \"$(footsort ui --url | head -1)\".")
def ui(inboxes: tuple[Path, ...], host: str, port: int, open_browser: bool, print_url: bool) -> None:
    """Check and correct photos in the browser: review/ and recent sorts, one key per class.

    Serves a local page (loopback only by default) and prints its URL, which carries a one-time
    token. Keys 1..9 move the selected photos to that class folder, u undoes. Every move is
    journaled like the daemon's (`footsort undo`, `footsort log`) and `footsort retrain` learns
    from it. INBOX is a folder holding the class folders (default: every one footsort has sorted
    into). Needs the `ui` extra: pip install 'footsort[ui]'. A running `footsort watch --ui`
    (or a service installed with --ui) serves the same page; --url prints its address.

    \b
    Example:
      footsort ui ~/Pictures/inbox
      footsort ui --port 9000 --open
      footsort ui --url              # the page the service serves
    """
    if print_url:
        if inboxes:
            raise FootsortError("--url lists the pages running now and takes no INBOX: `footsort ui --url`")
        _print_running(open_browser)
        return
    from footsort.ui import runtime
    from footsort.ui.library import Library, find_roots
    from footsort.ui.serving import Page, exposure_warning, require

    require()
    cfg = load_config()
    for p in inboxes:
        if not p.expanduser().is_dir():
            raise FootsortError(f"inbox {p} is not a folder; give the folder that holds review/ and the class folders")
    classes = model_classes(cfg)
    roots = find_roots(inboxes, cfg, classes)
    if not roots:
        raise FootsortError("no library found: name the inbox (footsort ui ~/Pictures/inbox), or sort some photos first")
    warning = exposure_warning(host)
    if warning:
        click.echo(warning, err=True)
    plugins = plugin_host(cfg)
    try:
        page = Page.open(Library(roots, classes, cfg.sort.review_folder), plugins, host, port)
        try:
            click.echo(f"footsort review page for {', '.join(map(str, roots))}")
            click.echo(f"open {page.url}")
            click.echo("stop with Ctrl+C")
            if open_browser:
                click.launch(page.url)
            with runtime.advertise(page.info("ui")):
                page.serve()
        finally:
            page.close()
    finally:
        plugins.close()


def _print_running(open_browser: bool) -> None:
    """`footsort ui --url`: the address of every page running now, newest first (opening the newest with --open)."""
    from footsort.ui import runtime

    pages = runtime.running()
    if not pages:
        raise FootsortError("no review page is running: start one with `footsort ui INBOX` or `footsort watch --ui "
                            "INBOX`, or install the service with `footsort service install --ui INBOX`")
    for page in pages:
        click.echo(page.url)
    if open_browser:
        click.launch(pages[0].url)


COMMANDS = [ui]
