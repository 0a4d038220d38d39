"""The one parameters object of a run.

A run is one cohort plus one parameter file (``params/smoke.yaml``,
``params/default.yaml``, ``params/paper.yaml`` or a user's own). The YAML file is
the only schema a user writes; :class:`Params` is the only schema in code. Every
key must be present and no other key is allowed, so a misspelt key is an error,
never a silent default.

Papermill injects the YAML's keys into a chapter's ``parameters`` cell; the
chapter's next cell turns them into one validated object with
:meth:`Params.from_namespace`. ``cmrpipe run`` builds the same object with
:meth:`Params.from_yaml`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from cmrpipe.paths import PARAMS_DIR, resolve

PROTOCOLS = ("mesa", "ukb")
SYNTH_PROFILES = ("smoke", "default", "paper")  # presets of cmrpipe.synth.cohort.PROFILES
STORE_COMPRESSIONS = ("lzf", "none")  # HDF5 compression of the subject store's images
SEGMENTATION_OPTIMIZERS = ("sgd", "adam")  # the U-Net's optimisers (cmrpipe.models.train.make_optimizer)


class ParamsError(ValueError):
    """A parameter file or a parameter value that cannot be used; names the file."""

    def __init__(self, source: str | os.PathLike, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = str(source)
        self.reason = reason


@dataclass(frozen=True)
class Params:
    """Every parameter of a run (see ``params/default.yaml`` for what each key means)."""

    # the run
    profile: str
    run_name: str
    runs_dir: str
    seed: int
    # the cohort
    cohort_manifest: str
    protocols: tuple[str, ...]
    n_subjects: int
    synth_profile: str
    store_compression: str
    # image size and model widths, epochs and batch sizes
    image_size_px: int
    landmark_width: float
    landmark_dense_units: int
    landmark_epochs: int
    landmark_batch_size: int
    unet_base_filters: int
    segmentation_epochs: int
    segmentation_batch_size: int
    segmentation_optimizer: str
    segmentation_model: str
    mass_volume_shape: tuple[int, int, int]
    mass_base_filters: int
    mass_epochs: int
    mass_batch_size: int

    def __post_init__(self) -> None:
        self._check()

    # ---- construction -------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "Params":
        """Read and validate a parameter file.

        Parameters
        ----------
        path : path
            A YAML file with every key of :class:`Params` and no other.

        Raises
        ------
        ParamsError
            The file is missing, is not a YAML mapping, lacks a key, has an unknown
            key, or holds a value of the wrong type or range.
        """
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as err:
            raise ParamsError(path, f"cannot read the parameter file ({err.strerror})") from err
        except yaml.YAMLError as err:
            raise ParamsError(path, f"not valid YAML: {err}") from err
        return cls.from_mapping(data, source=path)

    @classmethod
    def from_mapping(cls, data: Any, source: str | os.PathLike = "<parameters>") -> "Params":
        """Validate a mapping of every key to its value (as read from YAML).

        Parameters
        ----------
        data : mapping
            Every key of :class:`Params`; lists stand for tuples, ints for floats.
        source : str or path
            Named in error messages (the file the mapping came from).

        Raises
        ------
        ParamsError
            A missing or unknown key, or a value of the wrong type or range.
        """
        if not isinstance(data, Mapping):
            raise ParamsError(source, f"expected a mapping of keys to values, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            parts = []
            if missing:
                parts.append("missing key(s): " + ", ".join(missing))
            if unknown:
                parts.append("unknown key(s): " + ", ".join(map(str, unknown)))
            raise ParamsError(source, "; ".join(parts))
        hints = typing.get_type_hints(cls)
        values = {n: _coerce(source, n, hints[n], data[n]) for n in names}
        try:
            return cls(**values)
        except _RangeError as err:
            raise ParamsError(source, str(err)) from None

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], params_dir: Path = PARAMS_DIR) -> "Params":
        """Make the parameters of a chapter from its ``parameters`` cell.

        Run by ``cmrpipe run`` (or papermill with ``-f``), every key is injected and
        the namespace alone is the source, wherever its parameter file lives. Run by
        hand, with keys missing, the profile named by ``namespace["profile"]``
        (``default`` when absent) is read from ``params_dir`` and the keys found in
        the namespace replace its values.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        given = {k: namespace[k] for k in names if k in namespace}
        profile = namespace.get("profile", "default")
        source = f"parameters of the notebook (profile {profile!r})"
        if len(given) == len(names):
            return cls.from_mapping(given, source=source)
        base = cls.from_yaml(Path(params_dir) / f"{profile}.yaml").to_dict()
        return cls.from_mapping(base | given, source=source)

    # ---- use ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain YAML/JSON types (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        """sha256 of the canonical JSON form: equal parameters give equal digests."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def run_dir(self) -> Path:
        """The run directory, ``<runs_dir>/<run_name>`` (``runs_dir`` relative to the repository)."""
        return resolve(self.runs_dir) / self.run_name

    # ---- checks -------------------------------------------------------------------

    def _check(self) -> None:
        for name in ("run_name", "profile"):
            value = getattr(self, name)
            if not value or "/" in value or value in (".", ".."):
                raise _RangeError(f"{name} must be a plain folder name, got {value!r}")
        if self.synth_profile not in SYNTH_PROFILES:
            raise _RangeError(f"synth_profile must be one of {list(SYNTH_PROFILES)}, got {self.synth_profile!r}")
        if self.store_compression not in STORE_COMPRESSIONS:
            raise _RangeError(f"store_compression must be one of {list(STORE_COMPRESSIONS)}, "
                              f"got {self.store_compression!r}")
        if self.segmentation_optimizer not in SEGMENTATION_OPTIMIZERS:
            raise _RangeError(f"segmentation_optimizer must be one of {list(SEGMENTATION_OPTIMIZERS)}, "
                              f"got {self.segmentation_optimizer!r}")
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if not self.protocols or unknown:
            raise _RangeError(f"protocols must be a non-empty list drawn from {list(PROTOCOLS)}, got {list(self.protocols)}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            numbers = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0 for v in numbers) and f.name != "seed":
                raise _RangeError(f"{f.name} must be positive, got {value!r}")
        if self.seed < 0:
            raise _RangeError(f"seed must be >= 0, got {self.seed}")


class _RangeError(ValueError):
    pass


def _coerce(source, name: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against the type ``hint``; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ParamsError(source, f"{name} must be a list, got {value!r}")
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ParamsError(source, f"{name} must have {len(item_types)} items, got {list(value)!r}")
        return tuple(_coerce(source, name, t, v) for t, v in zip(item_types, value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ParamsError(source, f"{name} must be {hint.__name__}, got {value!r} ({type(value).__name__})")
    return value
