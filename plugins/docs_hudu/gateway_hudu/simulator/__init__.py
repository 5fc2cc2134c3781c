"""The Hudu simulator, a package: ``app`` holds the simulator class and its routes,
with the vendor's contract in its docstring; the entry point and the tests import from here.
"""

from gateway_hudu.simulator.app import (
    HuduSimulator,
)

__all__ = [
    "HuduSimulator",
]
