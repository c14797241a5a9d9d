"""HTTP: every page and JSON API handler, the dashboard sign-in, metrics and proxy headers."""
