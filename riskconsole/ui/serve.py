"""Start the console with its heavy modules already imported, so the first page a user opens is fast.

`streamlit run app.py` imports pandas, DuckDB, sqlglot, pydantic and Altair on the first page load
(~3 s here) and then builds the window's evaluator; this launcher does both before it listens.
"""

from __future__ import annotations

import argparse
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"


def main(argv: list[str] | None = None) -> None:
    """`python -m riskconsole.ui.serve [--port N] [--address A]`."""
    parser = argparse.ArgumentParser(prog="riskconsole-console", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default=None, help="interface to listen on (default: all)")
    args = parser.parse_args(argv)
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

    flags = {"server.port": args.port, "server.headless": True, "browser.gatherUsageStats": False}
    if args.address:
        flags["server.address"] = args.address
    bootstrap.load_config_options(flags)
    bootstrap.run(str(APP), False, [], flags)


if __name__ == "__main__":
    main()
