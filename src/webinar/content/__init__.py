"""Content uploaded to an event: files checked by what they are, scanned for malware, kept
within each organiser's quota (:mod:`.library`); the type sniffing (:mod:`.sniff`) and the
ClamAV client (:mod:`.clamd`). Presentations, shared videos and files in the room build on it.
"""
