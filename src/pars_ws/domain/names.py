"""Learner name matching: case, accents and surrounding blanks do not count."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


@lru_cache(maxsize=65536)  # names recur (registry and records alike); the key is a pure function
def name_key(name: str | None) -> str:
    if not name:
        return ""
    decomposed = unicodedata.normalize("NFKD", name.translate(_APOSTROPHES))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.split()).casefold()


def same_name(a: str | None, b: str | None) -> bool:
    return name_key(a) == name_key(b)
