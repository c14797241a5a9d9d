"""Signalling: one WebSocket per participant; the message schema, the session that dispatches
each message, and per-viewer rendering of interaction."""
