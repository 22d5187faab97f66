"""Pure analysis functions over plain rows: no database, no I/O."""
