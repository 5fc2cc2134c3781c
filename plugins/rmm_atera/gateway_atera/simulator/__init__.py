"""The Atera simulator, a package: ``app`` holds the simulator class and its routes,
with the vendor's contract in its docstring; the entry point and the tests import from here.
"""

from gateway_atera.simulator.app import (
    AteraSimulator,
    DEMO_API_KEY,
)

__all__ = [
    "AteraSimulator",
    "DEMO_API_KEY",
]
