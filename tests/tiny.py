"""The synthetic-cohort options of the tests' tiny subjects: 4 frames, one sub-sample per pixel."""

TINY = dict(frames={"mesa": 4, "ukb": 4}, n_in_plane=1, n_through=1)
