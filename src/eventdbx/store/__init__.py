"""The only code that speaks SQL: SQLite databases, migrations and the store Protocols."""
