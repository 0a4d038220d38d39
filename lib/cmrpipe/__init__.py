"""cmrpipe: a reproducible replication, as a Jupyter Book, of two cardiac MRI papers.

Paper A: an automated left-ventricular atlas from legacy MESA gradient-echo cine CMR.
Paper B: ML4H deep-learning LV mass from UK Biobank CMR.

Modules (data flows in this order): ``io``/``synth`` -> ``models`` -> ``measures`` ->
``shape`` -> ``stats`` -> ``report``; ``params`` holds the one parameters object,
``runner`` and ``book`` execute the chapters and build the book, ``cli`` is the
command line.
"""

__version__ = "0.1.0"
