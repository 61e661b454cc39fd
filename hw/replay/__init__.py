"""Offline replay: recorded hi-res controller logs as one more backend of the port (ingest, measures, decisions)."""
