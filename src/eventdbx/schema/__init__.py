"""JSON schemas for aggregates: model, parsing and validation (pure, no I/O)."""
