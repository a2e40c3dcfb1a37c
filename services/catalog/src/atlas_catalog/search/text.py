"""French text analysis for search: folding (case, accents), tokens, stop words, light stemming."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_TOKEN = re.compile(r"[a-z0-9]+")
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "’": "'", "ʼ": "'"})

STOPWORDS = frozenset(
    """
    a au aux avec c ce ces cet cette d dans de des du elle en et etc il ils j je l la le les
    leur leurs lui m ma mais me mes moi mon n ne nos notre nous on ou par pas pour qu que qui s
    sa se ses son sur t ta te tes toi ton tu un une vos votre vous y est sont etre avoir ai as
    comment quoi quel quelle quels quelles faire besoin veux voudrais cherche chercher aide
    """.split()  # noqa: SIM905
)
"""Words that carry no meaning in a query (folded); "aide" is one, users put it everywhere."""

# Longest first: the first that leaves a long enough stem wins.
_SUFFIXES = (
    "issements",
    "issement",
    "ements",
    "ement",
    "ments",
    "ment",
    "ations",
    "ation",
    "itions",
    "ition",
    "atrices",
    "atrice",
    "ateurs",
    "ateur",
    "euses",
    "euse",
    "eurs",
    "eur",
    "ances",
    "ance",
    "ences",
    "ence",
    "iques",
    "ique",
    "ismes",
    "isme",
    "istes",
    "iste",
    "ables",
    "able",
    "ites",
    "ite",
    "ives",
    "ive",
    "ifs",
    "if",
    "eaux",
    "eau",
    "aux",
    "ees",
    "ee",
    "es",
    "er",
    "ez",
    "e",
    "s",
    "x",
)
_MIN_STEM = 3


def fold(text: str) -> str:
    """Lowercase without accents or ligatures: "Crèche" and "creche" read the same."""
    text = text.lower().translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Folded words of `text`, stop words included (phrases need them in place)."""
    return _TOKEN.findall(fold(text))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light French stem of a folded word: déménagement, déménager, déménagements → demenag."""
    if len(word) <= _MIN_STEM or word.isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            word = word[: -len(suffix)]
            break
    if word.endswith("gu"):  # psychologue → psycholog, like psychologique
        word = word[:-1]
    # Doubled final consonants differ between forms (appel/appeller): keep one.
    if len(word) > _MIN_STEM + 1 and word[-1] == word[-2] and word[-1] not in "aeiouy":
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Stems of the meaningful words of `text`, in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def distance_at_most(a: str, b: str, limit: int) -> int | None:
    """Edit distance (with adjacent transpositions) when it is ≤ `limit`, else None."""
    if abs(len(a) - len(b)) > limit:
        return None
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        row_min = i
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
            row_min = min(row_min, value)
        if row_min > limit:
            return None
        previous2, previous = previous, current
    return previous[-1] if previous[-1] <= limit else None


def deletes(word: str, depth: int) -> set[str]:
    """Every string obtained by deleting up to `depth` characters (the SymSpell neighbourhood)."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def max_typos(word: str) -> int:
    """How many typos a word may carry and still match: none when short, two when long."""
    if len(word) <= 3:
        return 0
    if len(word) <= 6:
        return 1
    return 2
