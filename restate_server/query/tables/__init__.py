"""The scans of each table: stored records (or in-memory state) to Arrow batches."""
