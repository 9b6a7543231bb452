"""riskconsole: see what a fraud strategy change would do before you ship it."""

__version__ = "0.1.0"

import os as _os

# LightGBM's OpenMP threads spin while idle by default; on a small shared machine that made tiny fits
# 100x slower. Passive waiting costs nothing measurable here. A value set by the user wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
