"""Person and household linkage for famlink."""

from matchers.linkage import LinkageSummary, link_warehouse
from matchers.report import write_linkage_report

__all__ = ["LinkageSummary", "link_warehouse", "write_linkage_report"]
