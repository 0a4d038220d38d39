"""Chapter 00's rendering of the published values."""

import pytest

from cmrpipe.report import papers, published


def test_headline_texts_cover_every_key_and_keep_printed_decimals():
    texts = papers.headline_texts()
    assert set(texts) == set(papers.HEADLINE_NUMBERS) | set(papers.HEADLINE_INTERVALS)
    assert texts["a_n_cohort"] == "5003"
    assert texts["a_dice_cavity_ed_mean"] == "0.93"
    assert texts["b_recal_slope"] == "0.543487"
    assert texts["b_seg_mae_g"] == "10.41 (9.82–10.99)"
    assert texts["b_or_hf_lvh_seg"] == "4.67 (3.28–6.49)"


def test_headline_texts_mark_a_flagged_interval():
    assert papers.headline_texts()["b_ivf_mae_g"] == "14.30 (13.46–11.01) †"


def test_table_is_printed_layout_in_printed_order():
    t = published.table("A", "Table 2")
    assert list(t.index) == ["2CH LAX", "4CH LAX", "SAX"]
    assert list(t.columns) == ["n", "Auto vs Obs1", "Auto vs Obs2", "Obs1 vs Obs2", "ICC value"]
    assert t.loc["SAX", "Obs1 vs Obs2"] == "2.67 (2.29)"


def test_table_unknown_raises():
    with pytest.raises(KeyError, match="no published Table 9"):
        published.table("A", "Table 9")


def test_show_table_escapes_html_in_cells_and_caption():
    html = papers.show_table("A", "Table 4").to_html()
    assert "0.98 (p&lt;0.001)" in html
    assert "p&lt;0.05" in papers.show_table("A", "Table 1").to_html()


def test_value_unknown_record_raises():
    with pytest.raises(KeyError, match="0 published records match"):
        published.value("A", "Table 2", "SAX", "Auto vs Obs1", "median")


def test_flagged_lists_each_flagged_cell_once():
    flagged = published.flagged()
    assert not flagged.duplicated(["paper", "table", "row", "column"]).any()
    assert {"typo:", "inconsistent:"} == {n.split()[0] for n in flagged.note}
    assert len(published.flagged("B")) == 2


def test_text_figures_one_row_per_quoted_cell_with_printed_values():
    figures = papers.text_figures("B").set_index("figure")
    row = figures.loc["Centered InlineVF vs manual LV mass: MAE"]
    assert row["values"] == "mae 14.30, ci_low 13.46, ci_high 11.01"
    assert row["note"].startswith("typo:")
    assert figures.index.is_unique
    n_cells = published.load().query("paper == 'B' and table == 'Text'").groupby(["row", "column"]).ngroups
    assert len(figures) == n_cells
