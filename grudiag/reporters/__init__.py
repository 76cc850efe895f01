"""Reporters render a `Report`; they compute nothing."""
