"""Customers' rights: erase, export, anonymise, purge; suppression of erased people."""

from __future__ import annotations

from opencx.privacy._person import (
    PERSON_TABLES,
    PERSONAL_DATA_FREE,
    SCRUBBED_TABLES,
    Person,
    resolve_person,
)
from opencx.privacy.anonymise import anonymise_person
from opencx.privacy.erase import ErasureReport, erase_person
from opencx.privacy.export import export_person
from opencx.privacy.purge import PurgeReport, purge_events
from opencx.privacy.suppressions import Suppression, list_erasures, list_suppressions

__all__ = [
    "PERSONAL_DATA_FREE",
    "PERSON_TABLES",
    "SCRUBBED_TABLES",
    "ErasureReport",
    "Person",
    "PurgeReport",
    "Suppression",
    "anonymise_person",
    "erase_person",
    "export_person",
    "list_erasures",
    "list_suppressions",
    "purge_events",
    "resolve_person",
]
