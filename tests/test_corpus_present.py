"""Without the corpus the corpus tests would silently have no cases."""

from tests.corpus import CORPUS, corpus_files


def test_corpus_is_there() -> None:
    assert len(corpus_files()) > 50, f"no corpus at {CORPUS} (set CALGATEWAY_CORPUS)"
