"""The IT Glue simulator, a package: ``app`` holds the simulator class and its routes,
with the vendor's contract in its docstring; the entry point and the tests import from here.
"""

from gateway_itglue.simulator.app import (
    ITGlueSimulator,
)

__all__ = [
    "ITGlueSimulator",
]
