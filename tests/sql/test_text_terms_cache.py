"""c-TF-IDF terms are segmented once per text and terms version, then recalled from the warehouse."""

from insights import themes
from pipelines.call_insight import recalled_text_terms, stored_text_terms
from pipelines.warehouse import Warehouse

TEXTS = ["我最近失业了，工资还没发", "I forgot the due date, sorry", "我最近失业了，工资还没发"]


def test_terms_are_stored_once_and_recalled_into_the_memo(tmp_path, monkeypatch):
    with Warehouse(tmp_path / "w.duckdb").session() as session:
        expected = {text: themes.text_terms(text) for text in TEXTS}
        assert stored_text_terms(session, TEXTS) == 2
        stored_text_terms(session, TEXTS)  # a rerun adds nothing
        assert session.scalar("select count(*) from text_terms_cache") == 2
        themes._TERMS_MEMO.clear()
        monkeypatch.setattr(themes, "_computed_terms", lambda text: ("recomputed",))
        assert recalled_text_terms(session, TEXTS) == 2
        assert {text: themes.text_terms(text) for text in TEXTS} == expected
        assert "失业" in expected[TEXTS[0]]


def test_terms_of_another_version_are_not_recalled(tmp_path, monkeypatch):
    with Warehouse(tmp_path / "w.duckdb").session() as session:
        stored_text_terms(session, TEXTS)
        themes._TERMS_MEMO.clear()
        monkeypatch.setattr(themes, "terms_version", lambda: "jieba-0-changed-stop-words")
        assert recalled_text_terms(session, TEXTS) == 0
        assert not themes._TERMS_MEMO
