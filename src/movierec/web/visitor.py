"""The anonymous visitor: a random id in Flask's signed session cookie.

One rule for every page: the cookie's id counts only while the store knows that visitor,
so an id forgotten by "start over" or the retention rule is never revived (a copied old
cookie is worth nothing); a new id is made only when something is to be stored.
"""

from __future__ import annotations

import secrets
from typing import Literal, overload

from flask import session
from sqlalchemy.orm import Session

from movierec.store.schema import Visitor


@overload
def visitor_id(db: Session, create: Literal[True]) -> str: ...
@overload
def visitor_id(db: Session, create: bool = False) -> str | None: ...
def visitor_id(db: Session, create: bool = False) -> str | None:
    """The cookie's visitor if the store knows them, else (if ``create``) a new id,
    set in the cookie (which then lasts ``PERMANENT_SESSION_LIFETIME``)."""
    visitor = session.get("visitor")
    if not isinstance(visitor, str) or db.get(Visitor, visitor) is None:
        visitor = None
    if visitor is None and create:
        visitor = secrets.token_urlsafe(18)
        session["visitor"] = visitor
        session.permanent = True
    return visitor
