"""Load and run compiled artifacts, DLR-style (stub)."""
