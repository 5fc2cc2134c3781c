"""The ConnectWise PSA simulator, a package: ``app`` holds the simulator class and its routes,
with the vendor's contract in its docstring; the entry point and the tests import from here.
"""

from gateway_connectwise.simulator.app import (
    API_ROOT,
    ConnectWiseSimulator,
)

__all__ = [
    "API_ROOT",
    "ConnectWiseSimulator",
]
