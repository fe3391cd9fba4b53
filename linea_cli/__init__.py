"""linea: command-line administration for the Linea event platform."""

__version__ = "0.1.0"
