from pathlib import Path

import pytest

from spacy_entlink.kb import KnowledgeBase, read_source

ASSETS = Path(__file__).parents[2] / "assets"


@pytest.fixture(scope="session")
def demo_kb(tmp_path_factory) -> KnowledgeBase:
    return KnowledgeBase.build(read_source(ASSETS / "demo_kb.jsonl"), tmp_path_factory.mktemp("kb") / "demo")
