"""The other names of a slice's members: a country's names for its ISO code (pycountry), and the project's own
map (`[aliases]` in reverie.toml), so "revenue in Germany" and `memory search germany` find DE.

A dimension whose name says country, or whose members are all ISO country codes, gets the countries' names;
flight carriers ("AA", "UA") and airports ("JFK") are not all country codes, so they keep their own names.
"""

from __future__ import annotations

import re

from reverie.queries import sql_file, sql_value
from reverie.warehouse import table_exists

COUNTRY_DIMENSION = re.compile(r"countr|nation|market", re.IGNORECASE)


def _country_names(code: str) -> set[str]:
    import pycountry  # 50 ms on first use: only the night's prepare stage needs it

    found = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else (
        pycountry.countries.get(alpha_3=code.upper()) if len(code) == 3 else None)
    if found is None:
        return set()
    # not its three-letter code: CAN, IND or CHE in a sentence are words as often as countries
    names = {found.name, getattr(found, "common_name", ""), getattr(found, "official_name", "")}
    return {n.lower() for n in names if n and n.lower() != code.lower()}


def member_aliases(members: list[tuple[str, str]], configured: dict[str, tuple[str, ...]]) -> list[tuple[str, str, str]]:
    """(member, dimension, alias) for each alias: the project's own, and a country's names where the dimension
    holds countries."""
    by_dimension: dict[str, list[str]] = {}
    for member, dimension in members:
        by_dimension.setdefault(dimension, []).append(member)
    rows = set()
    for dimension, names in by_dimension.items():
        countries = {m: _country_names(m) for m in names if len(m) in (2, 3)}
        if COUNTRY_DIMENSION.search(dimension) or (countries and len(countries) == len(names)
                                                   and all(countries.values())):
            rows |= {(m, dimension, alias) for m, aliases in countries.items() for alias in aliases}
        for member in names:
            rows |= {(member, dimension, alias.lower()) for alias in configured.get(member, ())}
    return sorted(rows)


def write_aliases(con, configured: dict[str, tuple[str, ...]]) -> int:
    """Replace the member_aliases table with tonight's members' aliases; how many there are."""
    members = [tuple(r) for r in con.execute(sql_file("ask/members.sql")).fetchall()]
    rows = member_aliases(members, configured)
    con.execute("delete from member_aliases")
    if rows:  # written in, not bound: DuckDB's parameter binding imports pandas (see `with_values`)
        con.execute("insert into member_aliases values " + ", ".join(f"({', '.join(map(sql_value, row))})"
                                                                       for row in rows))
    return len(rows)


def read_aliases(con) -> dict[str, tuple[str, str]]:
    """alias -> (dimension, member), from a warehouse or a snapshot (none in one written before aliases were)."""
    if not table_exists(con, "member_aliases"):  # a snapshot written by an older release
        return {}
    return {alias: (dimension, member)
            for alias, member, dimension in con.execute(sql_file("ask/member_aliases.sql")).fetchall()}
