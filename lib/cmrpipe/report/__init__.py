"""Tables and figures of both papers, and the papers' published values as data."""
