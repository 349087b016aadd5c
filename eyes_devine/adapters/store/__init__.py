"""Where records are kept: the SQLite database and the writer that feeds it off the capture path."""
