"""NinjaOne (NinjaRMM) Public API v2 plugin for the MSP integration gateway.

Organizations become customers, devices carry their console link, active alerts are read and
reset. NinjaOne has no "acknowledge": an acknowledge is refused with ``NotSupported``.
"""

from gateway_ninjaone.constants import VENDOR

__all__ = ["VENDOR"]
