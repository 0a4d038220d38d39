"""The runner on tiny notebooks of the tests' own, executed for real with papermill."""

import json

import nbformat
import pytest

from cmrpipe import cli
from cmrpipe.book import BookError, check_pages
from cmrpipe.params import Params
from cmrpipe.runner import (ChapterFailed, RunnerError, check_kernel, discover_chapters, run_chapters,
                            select_chapters)
from conftest import make_notebook

MAKE_P = "from cmrpipe.params import Params\nP = Params.from_namespace(globals())"


@pytest.fixture
def chapters(tmp_path):
    nbs = tmp_path / "notebooks"
    make_notebook(nbs / "00_first.ipynb", MAKE_P, 'open("first.txt", "w").write(f"{P.seed} {P.n_subjects}")')
    make_notebook(nbs / "01_second.ipynb", MAKE_P, 'open("second.txt", "w").write(P.run_name)')
    return nbs


def statuses(outcomes):
    return {o.chapter.id: o.status for o in outcomes}


def test_discover_chapters_orders_and_ignores_other_files(tmp_path):
    make_notebook(tmp_path / "02_b.ipynb")
    make_notebook(tmp_path / "00_a.ipynb")
    make_notebook(tmp_path / "scratch.ipynb")
    with pytest.warns(UserWarning, match="scratch.ipynb is not a chapter"):
        assert [(c.id, c.name) for c in discover_chapters(tmp_path)] == [("00", "a"), ("02", "b")]


def test_lettered_chapter_sorts_between_numbers_and_can_be_selected(tmp_path):
    for name in ("01_b.ipynb", "00b_inserted.ipynb", "00_a.ipynb"):
        make_notebook(tmp_path / name)
    chapters = discover_chapters(tmp_path)
    assert [c.id for c in chapters] == ["00", "00b", "01"]
    assert [c.id for c in select_chapters(chapters, ["00b", "1"])] == ["00b", "01"]


def test_select_chapters_unknown_number_is_an_error(tmp_path):
    make_notebook(tmp_path / "00_a.ipynb")
    with pytest.raises(RunnerError, match="no chapter numbered 07"):
        select_chapters(discover_chapters(tmp_path), ["07"])


def test_check_kernel_missing_says_how_to_install():
    with pytest.raises(RunnerError, match="ipykernel install --sys-prefix --name no-such-kernel"):
        check_kernel("no-such-kernel")


def test_run_chapters_injects_parameters_and_writes_run_and_book(chapters, tmp_path, write_params):
    params_path = write_params(seed=4242)
    book = tmp_path / "book"
    outcomes = run_chapters(params_path, notebooks_dir=chapters, book_dir=book, progress=False)
    assert statuses(outcomes) == {"00": "ran", "01": "ran"}

    run_dir = Params.from_yaml(params_path).run_dir
    assert (run_dir / "first.txt").read_text() == "4242 24"  # cwd is the run directory
    assert (run_dir / "second.txt").read_text() == "smoke"
    assert Params.from_yaml(run_dir / "params.yaml") == Params.from_yaml(params_path)
    for name in ("00_first.ipynb", "01_second.ipynb"):
        assert (run_dir / "notebooks" / name).exists()
        published = nbformat.read(book / name, as_version=4)
        injected = [c for c in published.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and "remove-cell" in injected[0].metadata["tags"]
        assert "seed = 4242" in injected[0].source
    timings = [json.loads(line) for line in (run_dir / "logs" / "timings.jsonl").read_text().splitlines()]
    assert [(t["chapter"], t["status"]) for t in timings] == [("00", "ran"), ("01", "ran")]
    assert all(t["duration_s"] > 0 for t in timings)
    assert "chapter 01 (second) ran" in (run_dir / "logs" / "run.log").read_text()


def test_run_chapters_skips_unchanged_and_reruns_on_change(chapters, tmp_path, write_params):
    params_path = write_params()
    book = tmp_path / "book"
    run = lambda **kw: statuses(run_chapters(params_path, notebooks_dir=chapters, book_dir=book,
                                             progress=False, **kw))
    assert run() == {"00": "ran", "01": "ran"}
    assert run() == {"00": "skipped", "01": "skipped"}

    write_params(seed=8)  # a changed parameter re-runs every chapter
    assert run() == {"00": "ran", "01": "ran"}
    assert run(chapter_ids=["01"]) == {"01": "skipped"}

    # an edited earlier chapter re-runs, and so does the one after it (its input changed)
    make_notebook(chapters / "00_first.ipynb", MAKE_P, 'open("first.txt", "w").write("edited")')
    assert run() == {"00": "ran", "01": "ran"}
    assert run(force=True) == {"00": "ran", "01": "ran"}

    # a deleted book copy is restored from the run without executing again
    (book / "01_second.ipynb").unlink()
    assert run() == {"00": "skipped", "01": "skipped"}
    assert (book / "01_second.ipynb").exists()


def test_failing_cell_stops_the_run_and_the_book_refuses_it(chapters, tmp_path, write_params):
    make_notebook(chapters / "01_second.ipynb", MAKE_P, 'x = 1', 'raise ValueError("planted failure")')
    make_notebook(chapters / "02_third.ipynb", MAKE_P, 'open("third.txt", "w").write("ran")')
    params_path = write_params()
    book = tmp_path / "book"
    with pytest.raises(ChapterFailed) as info:
        run_chapters(params_path, notebooks_dir=chapters, book_dir=book, progress=False)
    message = str(info.value)
    assert "Chapter 01 (second) failed at cell 5 of 01_second.ipynb" in message  # markdown, parameters, 3 code
    assert "ValueError: planted failure" in message
    assert 'raise ValueError("planted failure")' in message
    run_dir = Params.from_yaml(params_path).run_dir
    assert str(run_dir / "notebooks" / "01_second.ipynb") in message
    assert not (run_dir / "third.txt").exists()  # the run stopped at the failure
    assert not (book / "02_third.ipynb").exists()

    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: 00_first\nchapters:\n  - file: 01_second\n")
    with pytest.raises(BookError, match=r"01_second.ipynb contains a failed execution.*planted failure"):
        check_pages(book, toc)

    # fixing the chapter resumes the run where it stopped
    make_notebook(chapters / "01_second.ipynb", MAKE_P, 'x = 1')
    outcomes = run_chapters(params_path, notebooks_dir=chapters, book_dir=book, progress=False)
    assert statuses(outcomes) == {"00": "skipped", "01": "ran", "02": "ran"}
    assert check_pages(book, toc)


def test_cli_run_prints_failure_in_plain_words(chapters, tmp_path, write_params, capsys):
    make_notebook(chapters / "01_second.ipynb", MAKE_P, 'import missing_module_xyz')
    code = cli.main(["run", "--params", str(write_params()), "--notebooks-dir", str(chapters),
                     "--book-dir", str(tmp_path / "book")])
    err = capsys.readouterr().err
    assert code == 1
    assert "cmrpipe run: Chapter 01 (second) failed" in err
    assert "ModuleNotFoundError: No module named 'missing_module_xyz'" in err


def test_cli_run_bad_parameter_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\n")
    assert cli.main(["run", "--params", str(bad)]) == 1
    assert "bad.yaml: missing key(s): profile" in capsys.readouterr().err


def test_check_kernel_from_another_environment_is_refused(tmp_path, monkeypatch):
    spec_dir = tmp_path / "kernels" / "elsewhere"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": ["/some/other/env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "elsewhere", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with pytest.raises(RunnerError, match=r"runs /some/other/env/bin/python, which is not this environment's"):
        check_kernel("elsewhere")


def test_check_kernel_accepts_the_registered_kernel():
    check_kernel("cmrpipe")  # registered in this environment by `make`


def test_book_refuses_chapters_of_two_runs(chapters, tmp_path, write_params):
    book = tmp_path / "book"
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: 00_first\nchapters:\n  - file: 01_second\n")
    run_chapters(write_params("a.yaml"), notebooks_dir=chapters, book_dir=book, progress=False)
    run_chapters(write_params("b.yaml", run_name="other"), chapter_ids=["01"], notebooks_dir=chapters,
                 book_dir=book, progress=False)
    with pytest.raises(BookError, match=r"come from different runs \(run 'smoke' .*00_first.ipynb; "
                                        r"run 'other' .*01_second.ipynb\)"):
        check_pages(book, toc)
    # a skipped chapter is re-published from its own run, so re-running one run mends the book
    outcomes = run_chapters(tmp_path / "a.yaml", notebooks_dir=chapters, book_dir=book, progress=False)
    assert statuses(outcomes) == {"00": "skipped", "01": "skipped"}
    assert len(check_pages(book, toc)) == 2


def test_interrupted_chapter_leaves_no_stale_page_and_resumes(chapters, tmp_path, write_params, monkeypatch):
    import papermill

    book = tmp_path / "book"
    params_path = write_params()
    run_chapters(params_path, notebooks_dir=chapters, book_dir=book, progress=False)
    make_notebook(chapters / "01_second.ipynb", MAKE_P, 'open("second.txt", "w").write("v2")')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # the user pressed Ctrl-C while chapter 01 ran

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_chapters(params_path, notebooks_dir=chapters, book_dir=book, progress=False)
    run_dir = Params.from_yaml(params_path).run_dir
    assert not (run_dir / "logs" / "stamps" / "01.json").exists()
    assert not (book / "01_second.ipynb").exists()  # the old version is not published as current
    monkeypatch.undo()

    outcomes = run_chapters(params_path, notebooks_dir=chapters, book_dir=book, progress=False)
    assert statuses(outcomes) == {"00": "skipped", "01": "ran"}
    assert (run_dir / "second.txt").read_text() == "v2"


def test_cli_run_unwritable_run_directory(tmp_path, write_params, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    code = cli.main(["run", "--params", str(write_params(runs_dir=str(blocker)))])
    assert code == 1
    assert f"cmrpipe run: cannot use {blocker}/smoke/notebooks: Not a directory" in capsys.readouterr().err


def test_forcing_an_earlier_chapter_reruns_the_later_ones_and_the_book_refuses_the_stale_one(
        chapters, tmp_path, write_params):
    make_notebook(chapters / "00_first.ipynb", MAKE_P,
                  'import random\nopen("first.txt", "w").write(str(random.random()))')
    params_path = write_params()
    book = tmp_path / "book"
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: 00_first\nchapters:\n  - file: 01_second\n")
    run = lambda **kw: statuses(run_chapters(params_path, notebooks_dir=chapters, book_dir=book,
                                             progress=False, **kw))
    assert run() == {"00": "ran", "01": "ran"}
    assert run(chapter_ids=["00"], force=True) == {"00": "ran"}
    with pytest.raises(BookError, match=r"01_second.ipynb was computed from an earlier execution of 00_first"):
        check_pages(book, toc)
    assert run() == {"00": "skipped", "01": "ran"}
    assert len(check_pages(book, toc)) == 2


def test_dead_kernel_is_a_chapter_failure_in_plain_words(chapters, tmp_path, write_params):
    make_notebook(chapters / "01_second.ipynb", MAKE_P, "import os\nos._exit(1)")
    params_path = write_params()
    with pytest.raises(ChapterFailed) as info:
        run_chapters(params_path, notebooks_dir=chapters, book_dir=tmp_path / "book", progress=False)
    message = str(info.value)
    assert "Chapter 01 (second) failed at cell 4 of 01_second.ipynb" in message
    assert "DeadKernelError" in message and "the kernel process ended" in message
    assert "os._exit(1)" in message
    log_text = (Params.from_yaml(params_path).run_dir / "logs" / "run.log").read_text()
    assert "ERROR Chapter 01 (second) failed" in log_text


def test_missing_cohort_manifest_is_refused_before_running(chapters, tmp_path, write_params):
    params_path = write_params(cohort_manifest=str(tmp_path / "nowhere.yaml"))
    with pytest.raises(RunnerError, match=r"cohort_manifest .*nowhere.yaml' names no file"):
        run_chapters(params_path, notebooks_dir=chapters, book_dir=tmp_path / "book", progress=False)
    assert not Params.from_yaml(params_path).run_dir.exists()


def test_changed_cohort_manifest_reruns(chapters, tmp_path, write_params):
    manifest = tmp_path / "cohort.yaml"
    manifest.write_text("subjects: []\n")
    params_path = write_params(cohort_manifest=str(manifest))
    run = lambda: statuses(run_chapters(params_path, notebooks_dir=chapters, book_dir=tmp_path / "book",
                                        progress=False))
    assert run() == {"00": "ran", "01": "ran"}
    assert run() == {"00": "skipped", "01": "skipped"}
    manifest.write_text("subjects: [s001]\n")
    assert run() == {"00": "ran", "01": "ran"}


def test_own_profile_outside_params_folder_runs(chapters, tmp_path, write_params):
    params_path = write_params("mycohort.yaml", profile="mycohort", run_name="mycohort")
    outcomes = run_chapters(params_path, notebooks_dir=chapters, book_dir=tmp_path / "book", progress=False)
    assert statuses(outcomes) == {"00": "ran", "01": "ran"}
    assert (tmp_path / "runs" / "mycohort" / "second.txt").read_text() == "mycohort"


def test_cli_book_refuses_a_failed_chapter(chapters, tmp_path, write_params, capsys):
    make_notebook(chapters / "01_second.ipynb", MAKE_P, 'raise RuntimeError("boom")')
    book = tmp_path / "book"
    cli.main(["run", "--params", str(write_params()), "--notebooks-dir", str(chapters), "--book-dir", str(book)])
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: 00_first\nchapters:\n  - file: 01_second\n")
    capsys.readouterr()
    assert cli.main(["book", "--book-dir", str(book), "--toc", str(toc)]) == 1
    err = capsys.readouterr().err
    assert "cmrpipe book: refusing to build the book" in err
    assert "01_second.ipynb contains a failed execution" in err and "RuntimeError: boom" in err
    assert not (book / "_build").exists()
