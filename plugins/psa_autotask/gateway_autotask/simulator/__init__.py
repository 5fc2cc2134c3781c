"""The Autotask simulator: the REST contract the plugin is built against, served in memory.

Run it standalone with ``gateway simulator autotask --port P`` or in a test thread with
``AutotaskSimulator().serve_in_thread()``.
"""

from gateway_autotask.simulator.app import AutotaskSimulator

__all__ = ["AutotaskSimulator"]
