"""Customers\x27 rights: erase, export, anonymise, purge; suppression of erased people."""
