"""The book: its table of contents, its refusals, and a real build of chapter 00."""

import re
import shutil

import nbformat
import pytest

from cmrpipe.book import BookError, build_book, check_pages, toc_files
from cmrpipe.paths import BOOK_DIR, BOOK_TOC, NOTEBOOKS_DIR
from cmrpipe.runner import discover_chapters


def test_toc_lists_every_chapter_in_order():
    chapters = [c.path.stem for c in discover_chapters(NOTEBOOKS_DIR)]
    assert chapters, "no chapter notebooks found"
    assert toc_files(BOOK_TOC) == ["intro"] + chapters


@pytest.mark.parametrize("chapter", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_are_clean_and_parameterised(chapter):
    nb = nbformat.read(chapter, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert not any(re.search(r"^\s*(def |for |class )", c.source, re.M) for c in code), "notebooks stay thin"


def test_check_pages_names_a_chapter_that_has_not_run(tmp_path):
    shutil.copy(BOOK_DIR / "intro.md", tmp_path / "intro.md")
    with pytest.raises(BookError, match=r"00_papers.ipynb is missing: run the chapter first"):
        check_pages(tmp_path, BOOK_TOC)


def test_book_builds_with_published_values(tmp_path, chapter_run):
    _, outcomes, executed = chapter_run
    assert [o.status for o in outcomes] == ["ran"] * len(outcomes)
    book = tmp_path / "book"  # a copy: the build writes into the book, and the test then breaks it
    shutil.copytree(executed, book)

    index = build_book(book)
    assert index == book / "_build" / "html" / "index.html"
    page = (index.parent / "00_papers.html").read_text()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "61.5 (10.1)" in text                      # Paper A Table 1, a table cell
    assert "0.98 (p&lt;0.001)" in page                # Paper A Table 4, escaped
    assert "r = 0.864 (0.847–0.880)" in text          # Paper B, glued into the prose
    assert "{glue" not in text                        # every glue role resolved
    assert "n_subjects = 16" not in text              # papermill's injected cell is hidden
    assert "Traceback" not in text
    cohort_page = (index.parent / "00b_synthetic_cohort.html").read_text()
    assert cohort_page.count("<img") >= 5             # the montages and the planted-effects figure
    assert "Paper A Table 1, MESA CMR" in cohort_page and "61.5 (10.1)" in cohort_page
    prep_page = (index.parent / "01_data_preparation.html").read_text()
    assert prep_page.count("<img") >= 2 and "Exclusions" in prep_page  # the two cohort flows
    assert "published (Paper A)" in prep_page and "2622 (52.4)" in prep_page

    # a Sphinx warning, here an unresolved glue key in the prose, fails the build
    (book / "intro.md").write_text("# Intro\n\nSee {glue:text}`no_such_key`.\n")
    with pytest.raises(BookError, match="Sphinx warnings are errors"):
        build_book(book)
