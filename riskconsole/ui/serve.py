"""Start the console with its heavy modules already imported, so the first page a user opens is fast.

`streamlit run app.py` imports pandas, DuckDB, sqlglot, pydantic and Altair on the first page load
(~3 s here) and then builds the window's evaluator; this launcher does both before it listens.
"""

from __future__ import annotations

import argparse
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"


def console_flags(port: int, address: str) -> dict:
    """Streamlit settings: where to listen, and uploads capped at the core's limit (`uploads.upload_limit_mb`)."""
    from riskconsole.uploads import upload_limit_mb

    return {"server.port": port, "server.address": address, "server.headless": True,
            "browser.gatherUsageStats": False, "server.maxUploadSize": upload_limit_mb(),
            "client.toolbarMode": "minimal"}  # no "Deploy" button: this console runs locally


def build_parser() -> argparse.ArgumentParser:
    """The launcher's flags: a port, and the interface (this machine only unless told otherwise)."""
    parser = argparse.ArgumentParser(prog="riskconsole-console", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1: this machine only; the console has no login, "
                             "so expose it deliberately, e.g. --address 0.0.0.0, only on a network you trust)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """`python -m riskconsole.ui.serve [--port N] [--address A]`."""
    args = build_parser().parse_args(argv)
    import riskconsole.charts  # noqa: F401  (the warm-up is the point)
    import riskconsole.compare  # noqa: F401
    import riskconsole.optimize  # noqa: F401
    import riskconsole.share  # noqa: F401
    import logging

    from streamlit.web import bootstrap

    from riskconsole.ui.common import prewarm, workspace

    logging.getLogger("streamlit").setLevel(logging.ERROR)  # caches filled outside a session warn once each
    prewarm(workspace())
    logging.getLogger("streamlit").setLevel(logging.WARNING)

    flags = console_flags(args.port, args.address)
    bootstrap.load_config_options(flags)
    bootstrap.run(str(APP), False, [], flags)


if __name__ == "__main__":
    main()
