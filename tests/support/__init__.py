"""Helpers for the tests that are not fixtures: checkers, builders."""
