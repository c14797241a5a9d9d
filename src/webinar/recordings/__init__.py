"""Recordings: the library of recorded files (quota, trimming) and sharing them by link."""
