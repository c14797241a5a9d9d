"""Storage: the embedded SQLite store, its schema (migrations), its record types and backups."""
