"""Data layer: files -> readers -> cache -> pairs (docs/method.md "Data")."""
