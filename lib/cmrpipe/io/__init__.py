"""Reading cohorts: manifests, DICOM and UK Biobank zips, views and geometry, overlays, labels, the subject store.

Nothing after this package opens DICOM: later stages read the subject store.
"""

from cmrpipe.io.errors import SubjectDataError

__all__ = ["SubjectDataError"]
