"""Helpers for the `dbx plugin` / `dbx queue` e2e tests: loopback receivers and direct queue edits."""
