"""Start the console with its heavy modules already imported, so the first page a user opens is fast.

`streamlit run app.py` imports pandas, DuckDB, sqlglot, pydantic and Altair on the first page load
(~3 s here) and then builds the window's evaluator; this launcher does both before it listens. On engine spark the
engine's start and frame build (a minute or more) run beside the server instead: it listens at once, and a page
opened meanwhile says that Spark is starting (`common.prewarm`, `common.wait_for_spark`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from riskconsole.escape import terminal

APP = Path(__file__).resolve().parents[2] / "app.py"


def console_flags(port: int, address: str) -> dict:
    """Streamlit settings: where to listen, and uploads capped at the core's limit (`uploads.upload_limit_mb`)."""
    from riskconsole.uploads import upload_limit_mb

    return {"server.port": port, "server.address": address, "server.headless": True,
            "browser.gatherUsageStats": False, "server.maxUploadSize": upload_limit_mb(),
            "client.toolbarMode": "minimal",  # no "Deploy" button: this console runs locally
            # the launcher says where to open it (`console_urls`); Streamlit's banner on a wildcard address asks
            # checkip.amazonaws.com for this machine's public address at every start and names localhost
            "logger.hideWelcomeMessage": True}


def console_urls(address: str, port: int) -> list[str]:
    """Where to open the console, the address to give teammates first: on a wildcard address (0.0.0.0, ::) it
    listens on every interface, and `http://0.0.0.0:8501` opens nothing on another machine; there the first is this
    machine's network address (the interface its default route leaves by), then this machine's own."""
    if address in ("0.0.0.0", "::", ""):
        from streamlit import net_util

        network = net_util.get_internal_ip()
        local = "[::1]" if address == "::" else "127.0.0.1"
        return ([f"http://{network}:{port}"] if network else []) + [f"http://{local}:{port}"]
    return [f"http://{f'[{address}]' if ':' in address else address}:{port}"]


def add_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The launcher's flags (here and `riskconsole console`): a port, and the interface (this machine only unless
    told otherwise)."""
    parser.add_argument("--port", type=int, default=8501, metavar="N", help="port to listen on (default 8501)")
    parser.add_argument("--address", default="127.0.0.1", metavar="A",
                        help="interface to listen on (default 127.0.0.1: this machine only; the console has no login, "
                             "so expose it deliberately, e.g. --address 0.0.0.0, only on a network you trust)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """`python -m riskconsole.ui.serve`'s parser."""
    return add_flags(argparse.ArgumentParser(prog="riskconsole-console", description=__doc__.splitlines()[0]))


def main(argv: list[str] | None = None) -> None:
    """`python -m riskconsole.ui.serve [--port N] [--address A]` (and `riskconsole console`)."""
    args = build_parser().parse_args(argv)
    serve(args.port, args.address)


def serve(port: int, address: str) -> None:
    """Warm the heavy modules and the workspace's caches, then run the console until stopped."""
    import riskconsole.charts  # noqa: F401  (the warm-up is the point)
    import riskconsole.compare  # noqa: F401
    import riskconsole.optimize  # noqa: F401
    import riskconsole.share  # noqa: F401
    from streamlit import logger
    from streamlit.web import bootstrap

    logger.set_log_level("error")  # caches filled outside a session warn once each (every Streamlit logger has its
    from riskconsole.ui.common import WARM_THREAD, prewarm, workspace  # own level: pages' modules make theirs)

    urls = console_urls(address, port)
    also = f"; on this machine also {urls[1]}" if len(urls) > 1 else ""
    print(f"console on {terminal(workspace().root)}: {urls[0]} (Ctrl-C stops it{also})", file=sys.stderr, flush=True)

    # Spark's warm-up fills the caches from a thread of its own, with no script run: that warning is for nobody
    context = logger.get_logger("streamlit.runtime.scriptrunner_utils.script_run_context")
    context.addFilter(lambda record: record.threadName != WARM_THREAD)
    prewarm(workspace())
    logger.set_log_level("warning")

    flags = console_flags(port, address)
    bootstrap.load_config_options(flags)
    bootstrap.run(str(APP), False, [], flags)


if __name__ == "__main__":
    main()
