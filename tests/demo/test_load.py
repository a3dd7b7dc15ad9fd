"""Loading the sample brand goes through ingestion and resolves people across channels."""

from __future__ import annotations

from opencx.config import Settings
from opencx.demo import load_demo
from opencx.store import Store


def test_demo_loads_once_and_links_channels(settings: Settings) -> None:
    with Store(settings.db) as store:
        report = load_demo(store, settings, customers=60, seed=3)
        assert report.loaded and report.rejected == 0 and report.token
        stored = store.con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        assert report.events == stored > 3000
        # 60 customers + 90 anonymous visitors, each one profile.
        assert report.profiles == 150
        multi = store.con.execute(
            "SELECT count(*) FROM profiles WHERE len(channels) >= 3"
        ).fetchall()[0][0]
        assert multi >= 40
        again = load_demo(store, settings, customers=60, seed=3)
        assert not again.loaded
        assert store.con.execute("SELECT count(*) FROM events").fetchall()[0][0] == stored
