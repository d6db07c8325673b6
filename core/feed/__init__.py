"""The aggregated cross-platform feed: ingest, ranking, dedupe, timelines, digests, exports (docs/feed.md)."""
