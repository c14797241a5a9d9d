"""Time-limited TURN credentials (the TURN REST API scheme coturn implements).

username = "<expiry unix time>:<participant id>", credential =
base64(HMAC-SHA1(secret, username)); coturn with ``use-auth-secret`` and the same
``static-auth-secret`` accepts them until the expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from webinar.config import Config


def turn_credentials(secret: str, user: str, ttl: int, now: float | None = None) -> tuple[str, str]:
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(config: Config, participant_id: str) -> list[dict[str, Any]]:
    """What a participant's browser passes to ``RTCPeerConnection({iceServers})``."""
    servers: list[dict[str, Any]] = []
    for s in config.ice.servers:
        entry: dict[str, Any] = {"urls": list(s.urls)}
        if s.username is not None:
            entry["username"] = s.username
        if s.credential is not None:
            entry["credential"] = s.credential
        servers.append(entry)
    turn = config.turn
    if turn.urls and turn.secret:
        username, credential = turn_credentials(turn.secret, participant_id, turn.ttl_seconds)
        servers.append({"urls": list(turn.urls), "username": username, "credential": credential})
    return servers
