"""Contingency playbooks: margin call → halt → liquidate, as idempotent, resumable actions."""
