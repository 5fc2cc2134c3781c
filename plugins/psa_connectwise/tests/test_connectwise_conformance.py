"""The gateway's conformance suite, run through the real pipeline against the simulator."""

from gateway.testing.conformance import ConformanceSuite

from gateway_connectwise.simulator import ConnectWiseSimulator


class TestConnectWiseConformance(ConformanceSuite):
    simulator_class = ConnectWiseSimulator
