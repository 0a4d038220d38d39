"""Statistics on the measures tables: baseline-characteristics tables (`table1`) and
agreement between two methods (`agreement`: Bland-Altman, Pearson, MAE)."""

from cmrpipe.stats.agreement import agreement_table, bland_altman, bland_altman_axes, mae, pearson
from cmrpipe.stats.table1 import Variable, table1, table1_numbers

__all__ = [
    "Variable",
    "agreement_table",
    "bland_altman",
    "bland_altman_axes",
    "mae",
    "pearson",
    "table1",
    "table1_numbers",
]
