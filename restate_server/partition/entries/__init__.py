"""Journal commands written by the SDK: one module per command, found by its name."""
