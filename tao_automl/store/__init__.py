"""State layer: the workspace (local path or fsspec URI) and its file names,
the append-only job ledger, submit intents and the local job mirror."""
