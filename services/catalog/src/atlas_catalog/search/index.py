"""An in-memory ranked index: BM25F over weighted fields, typo tolerance, synonym expansion.

Built from the database when the catalog changes (a few hundred documents: milliseconds to
query, well under a second to build), so search behaves the same on PostgreSQL and SQLite.
Typos: a query word unknown to the index is matched to indexed words within one or two edits
(SymSpell deletion neighbourhoods, then a true edit distance) and to the words it begins.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from atlas_catalog.search.synonyms import SYNONYM_GROUPS, SYNONYM_WEIGHT
from atlas_catalog.search.text import (
    STOPWORDS,
    deletes,
    distance_at_most,
    max_typos,
    stem,
    terms,
    words,
)

FIELD_WEIGHTS: Mapping[str, float] = {"title": 3.0, "keywords": 2.0, "summary": 1.0, "labels": 0.6}
FIELD_B: Mapping[str, float] = {"title": 0.3, "keywords": 0.3, "summary": 0.75, "labels": 0.3}
K1 = 1.2
TYPO_WEIGHT = (1.0, 0.75, 0.55)  # by edit distance
PREFIX_WEIGHT = 0.6
ALSO_MATCHED = 0.3
MAX_EXPANSIONS = 12
_CACHE_SIZE = 4096

TermSet = dict[str, float]
"""Alternative index terms for one query word (the word, its corrections), with weights."""


@dataclass(frozen=True)
class Alternative:
    """One way to match a clause: words that all count, scaled by `weight`."""

    weight: float
    termsets: tuple[TermSet, ...]


@dataclass(frozen=True)
class Clause:
    """A query word or phrase; a document scores its best alternative."""

    text: str
    alternatives: tuple[Alternative, ...]


class SearchIndex:
    """Ranks document ids for a French query; documents are field name → text mappings."""

    def __init__(self, documents: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        self.ids = [doc_id for doc_id, _ in documents]
        self._postings: dict[str, dict[int, float]] = {}
        self._surface: dict[str, str] = {}  # indexed word → its stem
        self._neighbours: dict[str, set[str]] = defaultdict(set)  # deletion variant → words
        self._prefixes: dict[str, list[str]] = defaultdict(list)
        self._cache: dict[str, list[tuple[int, float]]] = {}
        self._build(documents)
        self._synonyms = self._compile_synonyms()

    def __len__(self) -> int:
        return len(self.ids)

    # ---- building -----------------------------------------------------------------------------

    def _build(self, documents: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        count = len(documents)
        field_tfs: list[dict[str, Counter[str]]] = []
        lengths: dict[str, list[int]] = {field: [] for field in FIELD_WEIGHTS}
        for _, fields in documents:
            per_field: dict[str, Counter[str]] = {}
            for field in FIELD_WEIGHTS:
                text = fields.get(field, "")
                for word in words(text):
                    if word not in STOPWORDS:
                        self._surface.setdefault(word, stem(word))
                tokens = terms(text)
                per_field[field] = Counter(tokens)
                lengths[field].append(len(tokens))
            field_tfs.append(per_field)
        average = {f: (sum(v) / len(v) if v and sum(v) else 1.0) for f, v in lengths.items()}

        document_frequency: Counter[str] = Counter()
        for per_field in field_tfs:
            document_frequency.update({t for c in per_field.values() for t in c})
        for position, per_field in enumerate(field_tfs):
            weighted: dict[str, float] = defaultdict(float)
            for field, counts in per_field.items():
                b = FIELD_B[field]
                norm = 1 - b + b * (lengths[field][position] / average[field])
                for term, tf in counts.items():
                    weighted[term] += FIELD_WEIGHTS[field] * tf / norm
            for term, weight in weighted.items():
                df = document_frequency[term]
                idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
                score = idf * weight * (K1 + 1) / (weight + K1)
                self._postings.setdefault(term, {})[position] = score

        for word in self._surface:
            for variant in deletes(word, max_typos(word)):
                self._neighbours[variant].add(word)
            for size in range(3, len(word)):
                self._prefixes[word[:size]].append(word)

    def _compile_synonyms(self) -> dict[tuple[str, ...], list[tuple[str, ...]]]:
        """Phrase (as stems) → the other phrases of its groups."""
        result: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        for group in SYNONYM_GROUPS:
            phrases = [tuple(terms(p)) for p in group]
            for phrase in phrases:
                result[phrase].extend(p for p in phrases if p != phrase and p)
        return dict(result)

    # ---- querying -----------------------------------------------------------------------------

    def search(self, query: str) -> list[tuple[int, float]]:
        """(document position, score) of the matching documents, best first."""
        key = " ".join(words(query))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        clauses = self.analyse(query)
        ranked = self.rank(clauses)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = ranked
        return ranked

    def analyse(self, query: str) -> list[Clause]:
        """The query's clauses: each word (or synonym phrase) with its alternatives."""
        typed = [w for w in words(query) if w not in STOPWORDS]
        termsets = [self._expand(w) for w in typed]
        # The stem each word most likely means, to spot synonym phrases despite typos.
        best = [
            max(ts, key=lambda t: ts[t]) if ts else stem(w)
            for w, ts in zip(typed, termsets, strict=True)
        ]
        clauses: list[Clause] = []
        position = 0
        longest = max((len(p) for p in self._synonyms), default=1)
        while position < len(typed):
            matched = False
            for size in range(min(longest, len(typed) - position), 0, -1):
                phrase = tuple(best[position : position + size])
                others = self._synonyms.get(phrase)
                if not others:
                    continue
                own = Alternative(1.0, tuple(termsets[position : position + size]))
                # A phrase of m words standing for n typed words counts their average, n times:
                # a longer synonym must not outweigh the words typed.
                expansions = tuple(
                    Alternative(SYNONYM_WEIGHT * size / len(other), tuple({t: 1.0} for t in other))
                    for other in others
                )
                text = " ".join(typed[position : position + size])
                clauses.append(Clause(text, (own, *expansions)))
                position += size
                matched = True
                break
            if not matched:
                alternative = Alternative(1.0, (termsets[position],))
                clauses.append(Clause(typed[position], (alternative,)))
                position += 1
        return clauses

    def _expand(self, word: str) -> TermSet:
        """Index terms a typed word may mean: its stem, else near spellings and completions."""
        own = stem(word)
        if own in self._postings:
            return {own: 1.0}
        found: TermSet = {}
        limit = max_typos(word)
        candidates: set[str] = set()
        for variant in deletes(word, limit):
            candidates |= self._neighbours.get(variant, set())
        for candidate in candidates:
            distance = distance_at_most(word, candidate, limit)
            if distance is not None:
                target = self._surface[candidate]
                found[target] = max(found.get(target, 0.0), TYPO_WEIGHT[distance])
        if len(word) >= 3:
            for completion in self._prefixes.get(word, ())[: MAX_EXPANSIONS * 4]:
                target = self._surface[completion]
                found[target] = max(found.get(target, 0.0), PREFIX_WEIGHT)
        if len(found) > MAX_EXPANSIONS:
            found = dict(sorted(found.items(), key=lambda kv: -kv[1])[:MAX_EXPANSIONS])
        return found

    def rank(self, clauses: Sequence[Clause]) -> list[tuple[int, float]]:
        """Score documents against analysed clauses (uncached; `search` caches by query)."""
        if not clauses:
            return []
        totals: dict[int, float] = defaultdict(float)
        matched: dict[int, int] = defaultdict(int)
        for clause in clauses:
            best: dict[int, float] = {}
            rest: dict[int, float] = defaultdict(float)
            for alternative in clause.alternatives:
                sums: dict[int, float] = defaultdict(float)
                for termset in alternative.termsets:
                    word_best: dict[int, float] = {}
                    for term, weight in termset.items():
                        for position, score in self._postings.get(term, {}).items():
                            value = score * weight
                            if value > word_best.get(position, 0.0):
                                word_best[position] = value
                    for position, value in word_best.items():
                        sums[position] += value
                for position, value in sums.items():
                    value *= alternative.weight
                    previous = best.get(position, 0.0)
                    if value > previous:
                        best[position] = value
                        value = previous
                    rest[position] += value
            for position, value in best.items():
                # The best way a document matches counts; matching other ways too adds a little.
                totals[position] += value + ALSO_MATCHED * rest[position]
                matched[position] += 1
        size = len(clauses)
        # Documents matching every clause come first (coordination), then by BM25F score.
        ranked = [
            (position, round(total * (matched[position] / size) ** 2, 6))
            for position, total in totals.items()
        ]
        ranked.sort(key=lambda item: (-item[1], self.ids[item[0]]))
        return ranked
