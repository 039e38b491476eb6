"""Invocation lifecycle transitions: one module per transition."""
