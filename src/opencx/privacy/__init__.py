"""Customers' rights: erase, export, anonymise, purge; suppression of erased people."""
