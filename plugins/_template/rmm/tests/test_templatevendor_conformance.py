"""TemplateVendor passes the gateway's RMM conformance suite against its simulator."""

from gateway.testing.conformance import RmmConformanceSuite
from gateway_templatevendor.simulator import TemplateVendorSimulator


class TestTemplateVendorConformance(RmmConformanceSuite):
    simulator_class = TemplateVendorSimulator
