"""Movie titles as MovieLens writes them, and as people write and type them.

MovieLens writes ``"Matrix, The (1999)"``: the leading article moved to the end, the year
in parentheses, and often alternative titles in parentheses before the year
(``"Raiders of the Lost Ark (Indiana Jones and the Raiders of the Lost Ark) (1981)"``,
``"City of Lost Children, The (Cité des enfants perdus, La) (1995)"``, ``"(a.k.a. ...)"``).
This module is the one parser of that form: :func:`split_title` gives the main title and
its alternatives with the article in front, :func:`display_title` the main one alone (what
pages show), and :func:`fold` the form both titles and queries are compared in (search,
imports).

Only parentheses at the end of a title hold alternatives: ``"(500) Days of Summer"`` and
``"Evangelion: 1.0 You Are (Not) Alone"`` keep theirs, and so does a title whose text
before the parentheses ends in ``":"`` or ``"Or"`` (``"Birdman: Or (The Unexpected Virtue
of Ignorance)"``), where they are a subtitle.
"""

from __future__ import annotations

import re
import unicodedata

#: articles MovieLens moves to the end of a title (``"Matrix, The"``), folded
ARTICLES = frozenset(
    ("the", "a", "an", "les", "le", "la", "l", "il", "el", "los", "las")
    + ("der", "die", "das", "den", "det")
)
#: letters NFKD leaves whole that people type without the accent; apostrophes vanish
_EXTRA_FOLDS = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "'": "",
        "’": "",
        "`": "",
    }
)
_NON_WORD = re.compile(r"[^0-9a-z]+")
#: punctuation inside a word (``WALL·E``, ``Spider-Man``, ``S.W.A.T.``): no space around it
_INNER_MARK = re.compile(r"(?<=[0-9a-z])[^0-9a-z\s]+(?=[0-9a-z])")
_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+),\s*(?P<article>[^\s,()]+)$")
_LAST_PARENS = re.compile(r"\s*\(([^()]*)\)\s*$")
_AKA = re.compile(r"^a\.?\s?k\.?\s?a\.?\s+", re.IGNORECASE)
#: text before a last parenthesis that makes it a subtitle, not an alternative title
_SUBTITLE_BEFORE = re.compile(r"(:|\bor)\s*$", re.IGNORECASE)


def _plain(text: str) -> str:
    """Case-folded, accents and apostrophes dropped, the special letters spelled out."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_EXTRA_FOLDS))
    return "".join(c for c in text if not unicodedata.combining(c))


def fold(text: str) -> str:
    """``"Amélie: Le Fabuleux"`` -> ``"amelie le fabuleux"`` (accents, case, punctuation)."""
    return _NON_WORD.sub(" ", _plain(text)).strip()


def fold_joined(text: str) -> str:
    """:func:`fold`, but punctuation inside a word drops instead of splitting it.

    ``"WALL·E"`` -> ``"walle"``, ``"Spider-Man"`` -> ``"spiderman"``: what people type
    when they leave the mark out (:func:`fold` gives ``"wall e"``, ``"spider man"``).
    """
    return _NON_WORD.sub(" ", _INNER_MARK.sub("", _plain(text))).strip()


def article_first(name: str) -> str:
    """``"Matrix, The"`` -> ``"The Matrix"``; other names unchanged."""
    match = _TRAILING_ARTICLE.match(name.strip())
    if match and fold(match["article"]).replace(" ", "") in ARTICLES:
        article = match["article"]
        sep = "" if article.endswith(("'", "’")) else " "
        return f"{article}{sep}{match['rest']}"
    return name.strip()


def without_article(folded: str) -> str:
    """``"the matrix"`` -> ``"matrix"`` (a folded name without its leading article)."""
    head, _, rest = folded.partition(" ")
    return rest if head in ARTICLES and rest else folded


def split_title(title: str) -> tuple[list[str], int | None]:
    """``"Postman, The (Postino, Il) (1994)"`` -> (["The Postman", "Il Postino"], 1994).

    The first name is the main title; the rest are the alternative titles MovieLens gives
    in parentheses at the end (``a.k.a.`` dropped), each with its article moved to the
    front, in the order written.
    """
    year = None
    match = _YEAR_SUFFIX.search(title)
    if match:
        year = int(match.group(1))
        title = title[: match.start()]
    main = title.strip()
    alternatives: list[str] = []
    while (found := _LAST_PARENS.search(main)) is not None:
        before = main[: found.start()].strip()
        if not before or _SUBTITLE_BEFORE.search(before):
            break
        alternatives.insert(0, _AKA.sub("", found.group(1).strip()).strip())
        main = before
    names = [main] + [a for a in alternatives if a]
    return [article_first(n) for n in names], year


def display_title(title: str) -> str:
    """The title as people write it: ``"Matrix, The (1999)"`` -> ``"The Matrix"``,
    ``"City of Lost Children, The (Cité des enfants perdus, La) (1995)"`` ->
    ``"The City of Lost Children"`` (no year, no alternative titles, article in front)."""
    return split_title(title)[0][0]


def alternative_titles(title: str) -> list[str]:
    """The alternative titles MovieLens gives for ``title`` (article in front), if any."""
    return split_title(title)[0][1:]


__all__ = [
    "ARTICLES",
    "alternative_titles",
    "article_first",
    "display_title",
    "fold",
    "fold_joined",
    "split_title",
    "without_article",
]
