"""Importers: other trackers' history landed as segments of this project's own streams, so the
ingest, dbt and the quality gate treat it like collector data (docs/activitywatch.md)."""
