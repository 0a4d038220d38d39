"""The two acquisition looks of the synthetic cohort: MESA gradient echo and UK Biobank SSFP.

Intensities are relative (0-1) signal of each tissue before coil bias and noise;
the noise is the standard deviation of each of the two Gaussian channels whose
magnitude makes the Rician noise, in the same units.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmrpipe.synth import anatomy as an
from cmrpipe.synth import body


@dataclass(frozen=True)
class Protocol:
    """How one cohort's cine CMR looks and is stored.

    Attributes
    ----------
    name : str
        ``mesa`` or ``ukb``.
    rows, cols : int
        Matrix of every image.
    pixel_mm_range : (float, float)
        The column spacing (between columns, along the readout) is drawn per subject
        from this range.
    row_mm_range : (float, float) or None
        The row spacing (between rows, along the phase encoding) is drawn from this
        range; None for square pixels.
    thickness_mm, gap_mm : float
        SAX slice thickness and the gap between slices (pitch = thickness + gap).
    lax_thickness_mm : float
        Thickness of the 2CH and 4CH planes.
    n_frames : int
        Cine frames through one cycle.
    heart_intensity, body_intensity : dict
        Relative signal of each heart and body label.
    noise_sigma : float
        Rician noise level (relative to the signal scale).
    bias_strength : float
        Peak relative amplitude of the smooth coil-bias field.
    scanner, sequence : str
        Manufacturer and SequenceName written to the DICOM files.
    echo_ms, repetition_ms : float
        EchoTime and RepetitionTime written to the DICOM files.
    texture : float
        SD of the smooth multiplicative tissue texture.
    blood_flow : float
        Peak relative inflow brightening of blood over the cycle (gradient echo shows more).
    blood_texture : float
        SD of the uneven, cycle-varying flow signal of blood (gradient echo shows more).
    ringing : float
        Fraction of phase-encoding k-space lost to truncation (ringing and blur along rows).
    coil_strength : float
        How much of the surface-coil fall-off is left in the images (0: uniform receive
        field, 1: the raw sum-of-squares profile of the anterior and posterior arrays).
    psf_mm : float
        SD (mm) of the Gaussian point-spread of the reconstruction (blur besides the ringing).
    ghost : float
        Amplitude of the phase-encode ghosts of the beating heart, relative to it.
    inflow_basal : float
        Extra brightening of blood towards the base (fresh inflowing spins; gradient echo).
    view_gain_sd : float
        SD of each acquired plane's overall signal gain (slice-to-slice differences).
    banding : float
        Depth of the dark off-resonance bands of balanced SSFP (0: none; gradient echo has none).
    jet : float
        Signal lost where fast flow dephases the blood (the mitral inflow jet in diastole, the
        outflow jet in systole), at the fastest filling or ejection (gradient echo shows more).
    in_plane_saturation : float
        Blood signal lost in a plane along the long axis, where the blood flows within the
        slice and is excited again and again instead of being replaced (gradient echo; none
        in a short-axis plane, which the blood crosses).
    """

    name: str
    rows: int
    cols: int
    pixel_mm_range: tuple[float, float]
    thickness_mm: float
    gap_mm: float
    lax_thickness_mm: float
    n_frames: int
    heart_intensity: dict
    body_intensity: dict
    noise_sigma: float
    bias_strength: float
    scanner: str
    sequence: str
    echo_ms: float
    repetition_ms: float
    row_mm_range: tuple[float, float] | None = None
    texture: float = 0.05
    blood_flow: float = 0.05
    blood_texture: float = 0.03
    ringing: float = 0.0
    coil_strength: float = 0.0
    psf_mm: float = 0.0
    ghost: float = 0.0
    inflow_basal: float = 0.0
    view_gain_sd: float = 0.0
    banding: float = 0.0
    jet: float = 0.0
    in_plane_saturation: float = 0.0

    def draw_pixel_spacing(self, rng) -> tuple[float, float]:
        """One subject's PixelSpacing, (between rows, between columns) in mm."""
        col = float(rng.uniform(*self.pixel_mm_range))
        return (float(rng.uniform(*self.row_mm_range)) if self.row_mm_range else col), col

    @property
    def pitch_mm(self) -> float:
        """Distance between SAX slice centres: thickness plus gap."""
        return self.thickness_mm + self.gap_mm


# gradient echo: blood less than twice as bright as myocardium (inflow), fat brighter still
_HEART_GRE = {an.BACKGROUND: 0.0, an.LV_CAVITY: 0.51, an.LV_MYO: 0.28, an.RV_CAVITY: 0.49, an.RV_WALL: 0.28,
              an.LA_CAVITY: 0.47, an.EPI_FAT: 0.62, an.PAPILLARY: 0.29,
              an.RA_CAVITY: 0.46}
# balanced SSFP: signal about sin(a) / (1 - cos(a) + (1 + cos(a)) T1 / T2) (flip angle a 80 degrees, TR << T1, T2)
# times proton density: blood (T1/T2 about 1550/250 ms) about 3.1 times myocardium (950/50), liver (580/45) 1.3
# times it and skeletal muscle (1000/35) 0.75 times it
_HEART_SSFP = {an.BACKGROUND: 0.0, an.LV_CAVITY: 0.88, an.LV_MYO: 0.28, an.RV_CAVITY: 0.86, an.RV_WALL: 0.28,
               an.LA_CAVITY: 0.84, an.EPI_FAT: 0.80, an.PAPILLARY: 0.30,
               an.RA_CAVITY: 0.83}
# spoiled gradient echo: signal PD sin(a) (1 - E1) / (1 - cos(a) E1), E1 = exp(-TR / T1) (TR 8 ms, flip angle a about
# 20 degrees): liver (T1 about 580 ms) 1.3 times myocardium (950), skeletal muscle and spleen about as bright as it,
# fat (260) about 3 times; blood brighter than its T1 alone would make it by the fresh spins flowing in
_BODY_GRE = {body.AIR: 0.0, body.SOFT_TISSUE: 0.30, body.SUBCUT_FAT: 0.62, body.LUNG: 0.08, body.LIVER: 0.37,
             body.SPINE: 0.45, body.AORTA: 0.50, body.MUSCLE: 0.29, body.CSF: 0.16,
             body.RIB: 0.12, body.STOMACH: 0.22, body.SPLEEN: 0.27, body.MED_FAT: 0.55, body.GAS: 0.02,
             body.STERNUM: 0.40, body.DISC: 0.26, body.MARROW: 0.50, body.DIAPHRAGM: 0.29,
             body.CARTILAGE: 0.26, body.PULMONARY_VESSEL: 0.36, body.HEPATIC_VESSEL: 0.44,
             body.RIB_MARROW: 0.34, body.ABDOMINAL_FAT: 0.55}
_BODY_SSFP = {body.AIR: 0.0, body.SOFT_TISSUE: 0.24, body.SUBCUT_FAT: 0.80, body.LUNG: 0.07, body.LIVER: 0.36,
              body.SPINE: 0.55, body.AORTA: 0.85, body.MUSCLE: 0.21, body.CSF: 0.80,
              body.RIB: 0.16, body.STOMACH: 0.62, body.SPLEEN: 0.40, body.MED_FAT: 0.72, body.GAS: 0.02,
              body.STERNUM: 0.50, body.DISC: 0.48, body.MARROW: 0.62, body.DIAPHRAGM: 0.21,
              body.CARTILAGE: 0.30, body.PULMONARY_VESSEL: 0.70, body.HEPATIC_VESSEL: 0.70,
              body.RIB_MARROW: 0.40, body.ABDOMINAL_FAT: 0.72}


def protocol(name: str, n_frames: int | None = None) -> Protocol:
    """The MESA-like or UK Biobank-like protocol, optionally with another frame count.

    Raises
    ------
    ValueError
        For an unknown name or a frame count below 2.
    """
    if name == "mesa":
        # fast gradient echo, 256 x 160 matrix: fine readout columns, coarser phase-encoded rows
        p = Protocol("mesa", rows=160, cols=256, pixel_mm_range=(1.4, 1.7), row_mm_range=(1.8, 2.5),
                     thickness_mm=6.0, gap_mm=4.0, lax_thickness_mm=6.0, n_frames=25, heart_intensity=_HEART_GRE,
                     body_intensity=_BODY_GRE, noise_sigma=0.045, bias_strength=0.30, scanner="SIEMENS",
                     sequence="fl2d_cine", echo_ms=3.0, repetition_ms=8.0, texture=0.07, blood_flow=0.15,
                     blood_texture=0.08, ringing=0.3, coil_strength=0.85, psf_mm=1.3, ghost=0.035,
                     inflow_basal=0.22, view_gain_sd=0.06, jet=0.45, in_plane_saturation=0.08)
    elif name == "ukb":
        p = Protocol("ukb", rows=192, cols=208, pixel_mm_range=(1.75, 1.9), thickness_mm=8.0, gap_mm=2.0,
                     lax_thickness_mm=6.0, n_frames=50, heart_intensity=_HEART_SSFP, body_intensity=_BODY_SSFP,
                     noise_sigma=0.025, bias_strength=0.25, scanner="SIEMENS", sequence="trufi_cine",
                     echo_ms=1.1, repetition_ms=2.6, texture=0.05, blood_flow=0.04,
                     blood_texture=0.035, ringing=0.22, coil_strength=0.7, psf_mm=1.0, ghost=0.02,
                     inflow_basal=0.04, view_gain_sd=0.03, banding=0.75, jet=0.15)
    else:
        raise ValueError(f"unknown protocol {name!r}; known: mesa, ukb")
    if n_frames is not None:
        if n_frames < 2:
            raise ValueError(f"n_frames must be at least 2, got {n_frames}")
        p = Protocol(**{**p.__dict__, "n_frames": int(n_frames)})
    return p
