"""Browser, system and device of a visitor from the User-Agent header.

The rules are uap-core's (``ua-parser`` with ``ua-parser-builtins``, whose rules are released
monthly): a maintained list that names Yandex Browser, Samsung Internet, Edge, Opera, the
in-app browsers, ... where a hand-written check ("Chrome/ in it?") says Chrome. Names are made
shorter for the statistics table (``Mobile Safari`` is Safari, ``Chrome Mobile`` Chrome: the
device column says it is a phone) and the version is the major one: ``Samsung Internet 25``.

The device is a kind (:data:`DEVICES`: desktop, phone, tablet, other, unknown) and, for phones
and tablets, the model the header names (``Samsung SM-S911B``, ``iPhone``, ``iPad``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import ua_parser

#: The kinds of device, as stored (``attendance.device``) and exported.
DEVICES = ("desktop", "phone", "tablet", "other", "unknown")

#: uap-core's family names shortened (the device column tells the phone from the desktop).
_BROWSERS = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari (in-app)",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Yandex Browser Lite": "Yandex Browser",
}
_SYSTEMS = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
_DESKTOP_SYSTEMS = frozenset(
    {
        "Windows",
        "macOS",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "SUSE",
        "Mint",
        "Arch Linux",
        "ChromeOS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
    }
)
#: Device families that name no model.
_NO_MODEL = frozenset({"Other", "Generic Smartphone", "Generic Feature Phone", "Generic Tablet"})


@dataclass(frozen=True, slots=True)
class Client:
    browser: str  # "Yandex Browser 24", "Chrome 120 (headless)", "Other", "Unknown"
    os: str  # "Windows", "Android", "iOS", "macOS", "Other", "Unknown"
    device: str  # one of DEVICES
    model: str  # "Samsung SM-S911B", "iPhone", "" (none named, or a desktop)


@functools.lru_cache(maxsize=4096)
def parse_client(ua: str) -> Client:
    """What the User-Agent header ``ua`` says of the visitor's browser, system and device."""
    if not ua.strip():
        return Client("Unknown", "Unknown", "unknown", "")
    result = ua_parser.parse(ua)
    agent, system, device = result.user_agent, result.os, result.device
    if agent is None or agent.family == "Other":
        browser = "Other"
    else:
        family = agent.family
        headless = family == "HeadlessChrome"
        family = "Chrome" if headless else _BROWSERS.get(family, family)
        browser = f"{family} {agent.major}" if agent.major else family
        if headless:
            browser += " (headless)"
    os_name = "Other" if system is None or system.family == "Other" else system.family
    os_name = _SYSTEMS.get(os_name, os_name)
    family = device.family if device is not None else "Other"
    kind = _device_kind(ua, os_name, family, device.brand if device is not None else None)
    model = "" if kind == "desktop" or family in _NO_MODEL or family == "Spider" else family
    return Client(browser, os_name, kind, model)


def _device_kind(ua: str, os_name: str, family: str, brand: str | None) -> str:
    if family == "Spider":
        return "other"  # a crawler
    if family in ("iPad",) or brand == "Generic_Android_Tablet" or "Tablet" in family:
        return "tablet"
    if family in ("iPhone", "iPod") or os_name in ("Windows Phone", "KaiOS"):
        return "phone"
    if os_name == "Android":
        # Android tablets leave "Mobile" out of the header (Google's guidance for browsers).
        return "phone" if "Mobile" in ua else "tablet"
    if os_name == "iOS":
        return "phone"
    if "Mobile" in ua and os_name not in _DESKTOP_SYSTEMS:
        return "phone"
    if os_name in _DESKTOP_SYSTEMS or family == "Mac":
        return "desktop"
    return "other"


def parse_user_agent(ua: str) -> tuple[str, str]:
    """(browser, OS) from a User-Agent header, e.g. ("Chrome 120", "Windows")."""
    client = parse_client(ua)
    return client.browser, client.os


def warm_up() -> None:
    """Load and compile the rules now (about a third of a second) rather than on the first
    join; call it from a thread."""
    parse_client("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36")
