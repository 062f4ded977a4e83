"""The Gold dashboard: one self-contained HTML page rendered from the Gold tables."""
