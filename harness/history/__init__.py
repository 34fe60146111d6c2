"""The history: typed events and their append-only JSONL store."""
