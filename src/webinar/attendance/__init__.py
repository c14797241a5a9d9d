"""Attendance: who joined and left when, statistics and the attendee export."""
