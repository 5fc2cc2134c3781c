"""The HaloPSA simulator, a package: ``app`` holds the simulator class and its routes,
with the vendor's contract in its docstring; the entry point and the tests import from here.
"""

from gateway_halopsa.simulator.app import (
    HaloSimulator,
)

__all__ = [
    "HaloSimulator",
]
