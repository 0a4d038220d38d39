"""Statistics on the measures tables: baseline-characteristics tables (`table1`)."""

from cmrpipe.stats.table1 import Variable, table1, table1_numbers

__all__ = ["Variable", "table1", "table1_numbers"]
