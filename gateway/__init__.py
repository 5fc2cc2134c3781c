"""MSP integration gateway: one ticket queue over every PSA, exactly-once write-back."""

from gateway.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
