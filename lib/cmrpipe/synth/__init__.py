"""The synthetic virtual cohort: realistic cine CMR written as real DICOM, with known truth.

Modules: ``anatomy`` (the analytic heart and its motion), ``body`` (the chest
around it), ``subjects`` (demographics, risk factors, planted effects),
``protocols`` (MESA gradient-echo and UK Biobank SSFP looks), ``render`` (planes,
partial volume, bias, noise, breath-hold shifts), ``dicom`` (files), ``cohort``
(generation, truth, manifest).
"""
