"""Pure values and rules of EventDBX: no I/O, no clocks read, no SQL."""
