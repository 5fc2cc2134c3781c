"""The Template Vendor simulator, a package: ``app`` holds the simulator class and its routes,
with the vendor's contract in its docstring; the entry point and the tests import from here.
"""

from gateway_templatevendor.simulator.app import (
    TemplateVendorSimulator,
)

__all__ = [
    "TemplateVendorSimulator",
]
