"""linea's version: read by the packaging, `linea --version`, and the user agent of the audit rows it writes."""

__version__ = "0.1.0"
