"""`footsort ui`: the review page in the browser. Starlette and uvicorn are imported only when it runs."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from footsort.commands.options import load_config, model_classes, plugin_host
from footsort.errors import FootsortError

DEFAULT_PORT = 8765
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def free_port(host: str, wanted: int) -> int:
    """`wanted` when it can be bound on `host`, else any free port (0 asks for any)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in ((wanted, 0) if wanted else (0,)):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise FootsortError(f"cannot listen on {host}: no free port; pass --port")


@click.command("ui")
@click.argument("inboxes", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets other machines reach the page (token still needed).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port (another free one is taken when it is busy; 0: any).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
def ui(inboxes: tuple[Path, ...], host: str, port: int, open_browser: bool) -> None:
    """Check and correct photos in the browser: review/ and recent sorts, one key per class.

    Serves a local page (loopback only by default) and prints its URL, which carries a one-time
    token. Keys 1..9 move the selected photos to that class folder, u undoes. Every move is
    journaled like the daemon's (`footsort undo`, `footsort log`) and `footsort retrain` learns
    from it. INBOX is a folder holding the class folders (default: every one footsort has sorted
    into). Needs the `ui` extra: pip install 'footsort[ui]'.

    \b
    Example:
      footsort ui ~/Pictures/inbox
      footsort ui --port 9000 --open
    """
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise FootsortError(f"the review page needs {exc.name}: pip install 'footsort[ui]' "
                            "(starlette and uvicorn)") from None
    from footsort.ui.library import Library, find_roots
    from footsort.ui.server import Access, create_app
    from footsort.ui.service import ReviewService

    cfg = load_config()
    for p in inboxes:
        if not p.expanduser().is_dir():
            raise FootsortError(f"inbox {p} is not a folder; give the folder that holds review/ and the class folders")
    classes = model_classes(cfg)
    roots = find_roots(inboxes, cfg, classes)
    if not roots:
        raise FootsortError("no library found: name the inbox (footsort ui ~/Pictures/inbox), or sort some photos first")
    if host not in LOOPBACK:
        click.echo(f"warning: listening on {host}: other machines on the network can reach this page; anyone with "
                   "the URL (its token) can move your photos. Use the default 127.0.0.1 unless you need this.",
                   err=True)
    port = free_port(host, port)
    access = Access.for_address(host, port)
    plugins = plugin_host(cfg)
    service = ReviewService.open(Library(roots, classes, cfg.sort.review_folder), plugins)
    url = access.url(host, port)
    click.echo(f"footsort review page for {', '.join(map(str, roots))}")
    click.echo(f"open {url}")
    click.echo("stop with Ctrl+C")
    if open_browser:
        click.launch(url)
    try:
        uvicorn.run(create_app(service, access), host=host, port=port, log_level="warning", access_log=False,
                    server_header=False, proxy_headers=False)
    finally:
        service.close()
        plugins.close()


COMMANDS = [ui]
