"""TemplateVendor passes the gateway's documentation conformance suite against its simulator."""

from gateway.testing.conformance import DocsConformanceSuite
from gateway_templatevendor.simulator import TemplateVendorSimulator


class TestTemplateVendorConformance(DocsConformanceSuite):
    simulator_class = TemplateVendorSimulator
