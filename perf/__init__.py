"""Measurement scripts (speed, memory, detector recall): run by hand, never by `lrfp` or the tests."""
