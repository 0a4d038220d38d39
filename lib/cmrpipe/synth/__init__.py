"""The synthetic virtual cohort: realistic cine CMR written as real DICOM, with known truth.

Modules: ``anatomy`` (the analytic heart and its motion), ``detail`` (image-only
detail of the heart: trabeculae, valves, great vessels, coronary arteries), ``body``
(the chest around it), ``trees`` (the vessels of the lungs and the liver), ``subjects``
(demographics, risk factors, planted effects), ``protocols`` (MESA gradient-echo and
UK Biobank SSFP looks), ``render`` (planes, partial volume, bias, noise, breath-hold
shifts), ``dicom`` and ``inlinevf`` (files, InlineVF overlays), ``labels`` (core-lab
contours and landmarks), ``faults`` (planted defects), ``read`` (reading a cohort
back), ``cohort`` (generation, truth, manifest).
"""
