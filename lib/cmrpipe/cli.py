"""The command line: ``cmrpipe run``, ``cmrpipe book``, ``cmrpipe synth``, ``cmrpipe manifest``.

``cmrpipe run --params FILE [--chapters 01,03] [--force]`` executes the chapters
into the run directory and ``book/``; ``cmrpipe book`` builds the HTML book and
prints the path of its ``index.html``; ``cmrpipe manifest DIR`` writes a cohort
manifest (with the sha256 of every file) for a folder of DICOM. Errors are printed in plain words and end
the command with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmrpipe import book, runner
from cmrpipe.io.manifest import ManifestError
from cmrpipe.params import ParamsError
from cmrpipe.paths import BOOK_CONFIG, BOOK_DIR, BOOK_TOC, NOTEBOOKS_DIR
from cmrpipe.synth.cohort import SynthConfigError
from cmrpipe.workers import n_cores


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmrpipe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the chapters for a parameter file")
    run.add_argument("--params", required=True, type=Path, help="parameter file, e.g. params/default.yaml")
    run.add_argument("--chapters", default="", help="comma-separated chapter numbers, e.g. 01,03 (default: all)")
    run.add_argument("--force", action="store_true", help="re-run chapters even when unchanged")
    run.add_argument("--kernel", default=runner.KERNEL_NAME, help="Jupyter kernel (default: %(default)s)")
    run.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR, help=argparse.SUPPRESS)
    run.add_argument("--book-dir", type=Path, default=BOOK_DIR, help="where executed chapters go for the book")

    syn = sub.add_parser("synth", help="make a synthetic cohort (DICOM, labels, truth, manifest)")
    syn.add_argument("--profile", required=True, choices=["smoke", "default", "paper"])
    syn.add_argument("--out", required=True, type=Path, help="folder of the cohort")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--n-subjects", type=int, default=None, help="subjects per protocol (default: the profile's)")
    syn.add_argument("--protocol", choices=["mesa", "ukb"], action="append",
                     help="protocol(s) to make (repeatable; default: both)")
    syn.add_argument("--workers", type=int, default=n_cores(), help="parallel processes")
    syn.add_argument("--sentinel", default="", help="plant this string in PatientName/PatientID")
    syn.add_argument("--no-faults", action="store_true", help="plant no faulty subjects")

    man = sub.add_parser("manifest", help="write manifest.yaml and manifest.csv for a folder of DICOM")
    man.add_argument("folder", type=Path, help="a folder per subject (DICOM, any names) and/or UK Biobank zips")
    man.add_argument("--name", default=None, help="the cohort's name (default: the folder's)")

    bk = sub.add_parser("book", help="build the HTML book from the executed chapters")
    bk.add_argument("--book-dir", type=Path, default=BOOK_DIR)
    bk.add_argument("--config", type=Path, default=BOOK_CONFIG)
    bk.add_argument("--toc", type=Path, default=BOOK_TOC)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            outcomes = runner.run_chapters(
                args.params, [c for c in args.chapters.split(",") if c.strip()], args.force,
                notebooks_dir=args.notebooks_dir, book_dir=args.book_dir, kernel_name=args.kernel)
            for o in outcomes:
                print(f"chapter {o.chapter.id} {o.chapter.name}: {o.status} ({o.duration_s:.1f} s)")
        elif args.command == "book":
            print(book.build_book(args.book_dir, args.config, args.toc))
        elif args.command == "synth":
            from cmrpipe.synth.cohort import config_for, generate_cohort

            config = config_for(args.profile, seed=args.seed, n_subjects=args.n_subjects,
                                protocols=tuple(args.protocol or ("mesa", "ukb")), workers=args.workers,
                                sentinel=args.sentinel, faults=not args.no_faults)
            truth = generate_cohort(config, args.out)
            print(f"{len(truth)} subjects in {args.out} (manifest: {args.out / 'manifest.yaml'})")
        elif args.command == "manifest":
            from cmrpipe.io.manifest import load_manifest, write_manifest

            path = write_manifest(args.folder, args.name)
            print(f"{len(load_manifest(path).subjects)} subjects in {path}; add label files by hand "
                  "(data_manifest/README.md)")
    except (ParamsError, runner.RunnerError, book.BookError, SynthConfigError, ManifestError) as err:
        print(f"cmrpipe {args.command}: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        where = f" {err.filename}" if err.filename else ""
        print(f"cmrpipe {args.command}: cannot use{where}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
