"""Test helpers and conformance suites for nascore plugins."""
