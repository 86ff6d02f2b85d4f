"""Deciding when a resource runs and what its status says: pure functions the kopf layer calls."""
