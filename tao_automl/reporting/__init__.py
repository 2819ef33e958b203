"""Reporting layer: result classes, the ledger folded into results
(:mod:`.collect`, :mod:`.score`), the live progress table, plots and WandB."""
