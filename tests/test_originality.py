"""The built-in exercises are written in the project's own words, not the reference article's.

No run of eight or more words may be shared with the article, except the few questions the
article quotes for couples to ask each other, which the exercises use as they are.
Case, punctuation and curly quotes are ignored, so a copied sentence cannot hide behind them.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from .conftest import REPO

# The article lives beside the repository (../shared/reference), not in it: it is not ours to publish.
# A worktree sits one folder deeper, so look upward from the repository.
ARTICLE_PATH = Path("shared", "reference", "empathy-article.txt")
ARTICLE = next(
    (folder / ARTICLE_PATH for folder in REPO.parents if (folder / ARTICLE_PATH).is_file()), REPO.parent / ARTICLE_PATH
)
SCRIPTS = sorted((REPO / "scripts").glob("*.yaml"))
RUN_WORDS = 8

# Questions the article hands couples to use word for word; the exercises may say them as they are.
QUOTED_QUESTIONS = (
    "What do you need from me right now?",
    "What's the hardest part for you right now?",
    "I need a break to process this, can we talk later?",
    "Help me understand what that meant to you.",
)


def words(text: str) -> list[str]:
    """Return the words of `text`: lower case, apostrophes dropped, other punctuation a word break."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"['’‘`´]", "", text)
    return re.findall(r"[a-z0-9]+", text)


def runs(seq: list[str], n: int = RUN_WORDS) -> set[tuple[str, ...]]:
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


def without_allowed(text: str) -> list[list[str]]:
    """Split `text` into word lists around the allowed questions, so no run spans one."""
    flat = " ".join(words(text))
    for question in QUOTED_QUESTIONS:
        flat = flat.replace(" ".join(words(question)), "|")
    return [part.split() for part in flat.split("|")]


def shared_runs(text: str, article_runs: set[tuple[str, ...]]) -> list[str]:
    found: list[str] = []
    for part in without_allowed(text):
        found += [" ".join(r) for r in sorted(runs(part) & article_runs)]
    return found


@pytest.fixture(scope="module")
def article_runs() -> set[tuple[str, ...]]:
    assert ARTICLE.is_file(), f"the reference article is missing: {ARTICLE}"
    return runs(words(ARTICLE.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_no_eight_word_run_from_the_article(path: Path, article_runs: set[tuple[str, ...]]) -> None:
    # The whole file: prompts, title, summary and comments alike.
    copied = shared_runs(path.read_text(encoding="utf-8"), article_runs)
    assert not copied, f"{path.name} shares these runs with the article: {copied}"


def test_the_check_finds_a_copied_sentence_however_it_is_dressed(article_runs: set[tuple[str, ...]]) -> None:
    copied = (
        'say: "Each Person describes a recent conflict -- then both name THREE emotions they felt, '
        'not just angry or fine."'
    )
    assert shared_runs(copied, article_runs)
    curly = "They each \u201clistened\u201d with one ear and rebutted with the other."
    assert shared_runs(curly, article_runs)


def test_the_allowed_questions_are_the_articles_own(article_runs: set[tuple[str, ...]]) -> None:
    article = " ".join(words(ARTICLE.read_text(encoding="utf-8")))
    for question in QUOTED_QUESTIONS:
        assert " ".join(words(question)) in article, question
    # An allowed question does not let a copied run through around it.
    text = "Ask: what do you need from me right now? instead of assuming."
    assert shared_runs(text, article_runs) == []
    around = "Focus entirely on your partner's words, tone, and body language. What do you need from me right now?"
    assert "focus entirely on your partners words tone and" in shared_runs(around, article_runs)
