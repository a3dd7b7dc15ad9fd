"""Finding a customer by whatever the agent has in front of them."""

from __future__ import annotations

from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import refresh_profiles, search_profiles


def test_search_by_any_identifier_or_a_misspelt_name(ingestor: Ingestor) -> None:
    ingestor.ingest(
        [{"type": "identify", "userId": "u-42", "messageId": "1",
          "traits": {"email": "maria.lopez@example.com", "phone": "+15551234567",
                     "account_number": "ACC-100042", "name": "Maria Lopez"}},
         {"type": "identify", "userId": "u-43", "messageId": "2",
          "traits": {"name": "Mario Lopes"}}],
        SourceContext("web", "web"),
    )  # fmt: skip
    con = ingestor.store.con
    refresh_profiles(con)
    extractor = ingestor.extractor

    def first(query: str) -> tuple[str | None, str]:
        match = search_profiles(con, query, extractor)[0]
        return match.user_id, match.matched

    assert first("MARIA.LOPEZ@example.com") == ("u-42", "email")
    assert first("(555) 123-4567") == ("u-42", "phone")
    assert first("acc-100042") == ("u-42", "account number")
    assert first("u-42") == ("u-42", "user id")
    assert first("Maria Lopez") == ("u-42", "name")
    assert first("Maria Lopes")[0] in {"u-42", "u-43"}
    assert search_profiles(con, "nobody@nowhere.io", extractor) == []
    assert search_profiles(con, "   ", extractor) == []
