"""Cohort manifests (schema ``cmrpipe-cohort/1``): load and validate, check files, write one for a folder.

A manifest is YAML; paths in it are relative to the manifest's folder::

    schema: cmrpipe-cohort/1
    name: my-cohort
    checksums: manifest.csv          # path,sha256 of every file the cohort holds
    covariates: labels/covariates.csv      # optional: key, protocol, age_years, sex, ...
    manual_mass: labels/manual_mass.csv    # optional: key, lv_mass_g
    truth: truth/subjects.csv              # optional (synthetic cohorts)
    subjects:
      - key: mesa_0001                     # letters, digits, _ . - ; never a DICOM identifier
        protocol: mesa                     # mesa (gradient echo, Paper A) or ukb (SSFP, Paper B)
        images: {kind: dicom_folder, path: mesa/dicom/mesa_0001}
        contours: labels/contours/mesa_0001.csv     # optional
        landmarks: labels/landmarks/mesa_0001.csv   # optional
      - key: ukb_0001
        protocol: ukb
        images: {kind: ukb_zips, paths: [ukb/bulk/1000001_20209_2_0.zip, ukb/bulk/1000001_20208_2_0.zip]}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from cmrpipe.io.errors import SubjectDataError

SCHEMA = "cmrpipe-cohort/1"
PROTOCOLS = ("mesa", "ukb")
IMAGE_KINDS = ("dicom_folder", "ukb_zips")
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
UKB_ZIP = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)\.zip$")


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class SubjectEntry:
    """One subject of a manifest; paths relative to the cohort root."""

    key: str
    protocol: str
    images_kind: str
    image_paths: tuple[str, ...]
    contours: str | None = None
    landmarks: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A validated cohort manifest."""

    path: Path
    name: str
    subjects: tuple[SubjectEntry, ...]
    checksums: dict
    covariates: str | None = None
    manual_mass: str | None = None
    truth: str | None = None

    @property
    def root(self) -> Path:
        """The folder paths are relative to."""
        return self.path.parent

    def subject_files(self, entry: SubjectEntry) -> list[str]:
        """The checksummed files of a subject's images (label files apart)."""
        if entry.images_kind == "ukb_zips":
            return list(entry.image_paths)
        prefix = entry.image_paths[0].rstrip("/") + "/"
        return sorted(p for p in self.checksums if p.startswith(prefix))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _relative(value, where: str, path: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{path}: {where} must be a relative path, got {value!r}")
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise ManifestError(f"{path}: {where} must stay inside the cohort folder (relative, no '..'), got {value!r}")
    return value


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest.

    Raises
    ------
    ManifestError
        Unreadable file, wrong schema, a subject entry without key, protocol or images,
        duplicate keys, unknown image kind, a path outside the cohort folder, or a
        checksums table that is missing or malformed. The message names the entry.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ManifestError(f"{path}: cannot read the manifest ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise ManifestError(f"{path}: schema must be {SCHEMA!r}, found {found!r}")
    raw = document.get("subjects")
    if not isinstance(raw, list) or not raw:
        raise ManifestError(f"{path}: 'subjects' must be a non-empty list")
    subjects, seen = [], set()
    for n, item in enumerate(raw):
        where = f"subjects[{n}]"
        if not isinstance(item, dict):
            raise ManifestError(f"{path}: {where} must be a mapping")
        key = item.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise ManifestError(f"{path}: {where}: key must be 1-64 letters, digits, '_', '.' or '-', got {key!r}")
        where = f"{where} (key {key})"
        if key in seen:
            raise ManifestError(f"{path}: {where}: duplicate key")
        seen.add(key)
        if item.get("protocol") not in PROTOCOLS:
            raise ManifestError(f"{path}: {where}: protocol must be one of {', '.join(PROTOCOLS)}, "
                                f"got {item.get('protocol')!r}")
        images = item.get("images")
        if not isinstance(images, dict) or images.get("kind") not in IMAGE_KINDS:
            kind = images.get("kind") if isinstance(images, dict) else images
            raise ManifestError(f"{path}: {where}: images.kind must be one of {', '.join(IMAGE_KINDS)}, got {kind!r}")
        if images["kind"] == "dicom_folder":
            paths = (_relative(images.get("path"), f"{where}: images.path", path),)
        else:
            listed = images.get("paths")
            if not isinstance(listed, list) or not listed:
                raise ManifestError(f"{path}: {where}: images.paths must list the subject's zip files")
            paths = tuple(_relative(p, f"{where}: images.paths", path) for p in listed)
        labels = {name: _relative(item[name], f"{where}: {name}", path) if item.get(name) else None
                  for name in ("contours", "landmarks")}
        subjects.append(SubjectEntry(key, item["protocol"], images["kind"], paths, **labels))
    tables = {name: _relative(document[name], name, path) if document.get(name) else None
              for name in ("covariates", "manual_mass", "truth")}
    checksums = _read_checksums(path, _relative(document.get("checksums"), "checksums", path))
    return Manifest(path=path, name=str(document.get("name", path.stem)), subjects=tuple(subjects),
                    checksums=checksums, **tables)


def _read_checksums(manifest_path: Path, relative: str) -> dict:
    table_path = manifest_path.parent / relative
    try:
        table = pd.read_csv(table_path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ManifestError(f"{manifest_path}: checksums file {relative} cannot be read ({err})") from None
    if list(table.columns[:2]) != ["path", "sha256"]:
        raise ManifestError(f"{table_path}: columns must be path,sha256, found {','.join(table.columns)}")
    bad = table[~table.sha256.fillna("").str.match(_SHA256)]
    if len(bad):
        raise ManifestError(f"{table_path}: line {bad.index[0] + 2}: not a sha256 ({bad.sha256.iloc[0]!r})")
    return dict(zip(table.path, table.sha256))


def verify_files(manifest: Manifest, entry: SubjectEntry, paths: list[str]) -> None:
    """Check the sha256 of a subject's files against the manifest, before any is used.

    Raises
    ------
    SubjectDataError
        A file missing, not listed in the checksums, or whose checksum disagrees.
    """
    for rel in paths:
        full = manifest.root / rel
        if not full.is_file():
            raise SubjectDataError(entry.key, rel, "ingest", "file listed in the manifest is missing")
        expected = manifest.checksums.get(rel)
        if expected is None:
            raise SubjectDataError(entry.key, rel, "checksum", "file has no checksum in the manifest")
        if sha256_file(full) != expected:
            raise SubjectDataError(entry.key, rel, "checksum", "file checksum disagrees with the manifest "
                                   "(changed since the manifest was written); refused before use")


def write_manifest(folder: str | Path, name: str | None = None) -> Path:
    """Write ``manifest.yaml`` and ``manifest.csv`` for a folder of DICOM (``cmrpipe manifest DIR``).

    Each subfolder holding files is one subject (protocol ``mesa``: a DICOM folder);
    UK Biobank bulk zips (``{eid}_{field}_{instance}_{array}.zip``) anywhere are grouped
    by eid into one ``ukb`` subject each. Subjects are keyed ``subj_0001``.. in sorted
    order, never by folder name or eid (those may identify people); the manifest,
    an input that stays with the data, holds the mapping. Label files are not guessed:
    add ``contours`` and ``landmarks`` entries by hand (see data_manifest/README.md).

    Returns
    -------
    Path
        The manifest written.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ("manifest.yaml", "manifest.csv"))
    zips: dict[str, list[str]] = {}
    folders: dict[str, list[str]] = {}
    for p in files:
        rel = p.relative_to(folder).as_posix()
        match = UKB_ZIP.match(p.name)
        if match:
            zips.setdefault(match.group(1), []).append(rel)
        elif len(p.relative_to(folder).parts) > 1:
            folders.setdefault(p.relative_to(folder).parts[0], []).append(rel)
    entries = [{"protocol": "mesa", "images": {"kind": "dicom_folder", "path": top}} for top in sorted(folders)]
    entries += [{"protocol": "ukb", "images": {"kind": "ukb_zips", "paths": sorted(zips[eid])}} for eid in sorted(zips)]
    if not entries:
        raise ManifestError(f"{folder}: no subject folders or UK Biobank zips found")
    subjects = [{"key": f"subj_{n + 1:04d}", **entry} for n, entry in enumerate(entries)]
    pd.DataFrame({"path": [p.relative_to(folder).as_posix() for p in files],
                  "sha256": [sha256_file(p) for p in files]}).to_csv(folder / "manifest.csv", index=False)
    document = {"schema": SCHEMA, "name": name or folder.name, "checksums": "manifest.csv", "subjects": subjects}
    out = folder / "manifest.yaml"
    out.write_text("# cmrpipe cohort manifest, written by `cmrpipe manifest`; paths are relative to this file\n"
                   + yaml.safe_dump(document, sort_keys=False))
    return out
