"""Data layer: files -> readers -> cache -> pairs (SPEC.md "Data")."""
