"""The one error a subject's data can raise: it names the subject, the file and the stage."""

from __future__ import annotations

STAGES = ("manifest", "checksum", "ingest", "geometry", "labels", "qc")


class SubjectDataError(ValueError):
    """A subject's data cannot be used; the per-subject loop turns it into an exclusion row.

    Parameters
    ----------
    key : str
        The subject key (never a DICOM identifier).
    path : str
        The file at fault, relative to the cohort root (a zip member as ``zip/member``).
    stage : str
        One of :data:`STAGES`.
    reason : str
        What is wrong, in plain words.

    Examples
    --------
    >>> str(SubjectDataError("mesa_0003", "mesa/dicom/mesa_0003/SAX/IM_0001.dcm", "ingest", "not a DICOM file"))
    '[mesa_0003] mesa/dicom/mesa_0003/SAX/IM_0001.dcm: not a DICOM file'
    """

    def __init__(self, key: str, path: str, stage: str, reason: str):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
        super().__init__(f"[{key}] {path}: {reason}")
        self.key, self.path, self.stage, self.reason = key, str(path), stage, reason

    def row(self, protocol: str) -> dict:
        """The exclusion row: key, protocol, stage, file, reason."""
        return {"key": self.key, "protocol": protocol, "stage": self.stage, "file": self.path, "reason": self.reason}
