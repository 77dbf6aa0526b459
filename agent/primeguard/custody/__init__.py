"""Custody: withdrawal lifecycle, four-eyes approvals, keystore signing, vault execution."""
