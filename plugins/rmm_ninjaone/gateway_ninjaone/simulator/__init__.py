"""The NinjaOne simulator, a package: ``app`` holds the simulator class and its routes,
with the vendor's contract in its docstring; the entry point and the tests import from here.
"""

from gateway_ninjaone.simulator.app import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    NinjaOneSimulator,
)

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "NinjaOneSimulator",
]
