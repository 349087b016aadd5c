"""Presentation: tables, the watch screen, JSON Lines.  Views read records and snapshots, never live state;
rich is imported here only."""
