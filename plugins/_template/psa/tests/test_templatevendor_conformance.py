"""Template Vendor against the gateway's conformance suite: the real pipeline (HTTP API, a real
redis-server, rq jobs, this plugin) calling the simulator over loopback HTTP."""

from gateway.testing.conformance import ConformanceSuite

from gateway_templatevendor.simulator import TemplateVendorSimulator


class TestTemplateVendorConformance(ConformanceSuite):
    simulator_class = TemplateVendorSimulator
