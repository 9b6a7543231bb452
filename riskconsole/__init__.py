"""riskconsole: see what a fraud strategy change would do before you ship it."""

__version__ = "0.1.0"
