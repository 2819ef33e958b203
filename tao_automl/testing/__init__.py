"""Test helpers that ship with the package (usable by third-party tests and
the benchmarks): :mod:`.llm_server`, a scripted OpenAI-compatible server."""
