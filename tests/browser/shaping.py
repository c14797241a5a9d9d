"""A rate-limited network for one browser: a veth pair into a network namespace of
its own, shaped with ``tc`` (token-bucket filter) on the server's side.

::

    test's namespace (server, other pages)        the subscriber's namespace
      10.77.0.1  wt0  ==== veth ====  wt1  10.77.0.2   Chromium (via nsenter)
                 ^ tbf: what the subscriber receives

The subscriber's Chromium is started through a wrapper that enters the namespace
(``nsenter``), so Playwright drives it as usual over its pipes. Needs root in a
private network namespace (``scripts/test`` runs pytest in one); it refuses to touch
the machine's real namespace and says so, so a test cannot silently pass.
Used by tests/browser/test_tiers.py, test_shaping.py and benchmarks/tiers.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER_ADDRESS = "10.77.0.1"
CLIENT_ADDRESS = "10.77.0.2"
CHROMIUM = "/usr/bin/chromium"


class ShapingUnavailable(RuntimeError):
    """This machine (or this way of running the tests) cannot shape a network."""


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ShapingUnavailable(f"{' '.join(args)} failed: {done.stderr.strip()}")


class ShapedNetwork:
    """Create with :meth:`start`, always :meth:`close`."""

    def __init__(self) -> None:
        self.dev = f"wt{os.getpid() % 100000}"
        self.peer = f"{self.dev}p"
        self._holder: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="webinar-shaping-"))
        self.chromium_wrapper = self._dir / "chromium-in-netns"
        self.rate_kbit: int | None = None
        self.table = f"webinar_{self.dev}"
        self._nft = False
        self._relay: subprocess.Popen[str] | None = None
        self.jitter_ms = 0
        self.relay_report = ""  # what the jitter relay printed when it stopped

    def start(self) -> ShapedNetwork:
        missing = [tool for tool in ("ip", "tc", "nsenter", "unshare") if not shutil.which(tool)]
        if missing:
            raise ShapingUnavailable(f"missing tools: {', '.join(missing)} (iproute2, util-linux)")
        if os.geteuid() != 0:
            raise ShapingUnavailable("shaping the network needs root (run through scripts/test)")
        links = subprocess.run(
            ["ip", "-o", "link", "show"], capture_output=True, text=True, check=False
        ).stdout
        names = [
            line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if ":" in line
        ]
        others = sorted(n for n in names if n != "lo" and not n.startswith("wt"))
        if others:  # not the private namespace scripts/test makes: the machine's own
            raise ShapingUnavailable(
                f"refusing to add interfaces next to {', '.join(others)}: run the test "
                "through scripts/test, which gives pytest a private network namespace"
            )
        self._holder = subprocess.Popen(["unshare", "-n", "sleep", "100000"])
        pid = str(self._holder.pid)
        # the holder must have entered its namespace before we move the peer into it
        for _ in range(100):
            try:
                if os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                    break
            except OSError:
                pass
            time.sleep(0.02)
        _run("ip", "link", "add", self.dev, "type", "veth", "peer", "name", self.peer)
        _run("ip", "link", "set", self.peer, "netns", pid)
        inside = ("nsenter", "-t", pid, "-n")
        # No IPv6 link-local addresses: the kernel adds them a moment after the link
        # comes up, and a browser that sees an address appear fails its requests in
        # flight (net::ERR_NETWORK_CHANGED, seen once as a presenter page loaded).
        _run("ip", "link", "set", "dev", self.dev, "addrgenmode", "none")
        _run(*inside, "ip", "link", "set", "dev", self.peer, "addrgenmode", "none")
        _run("ip", "addr", "add", f"{SERVER_ADDRESS}/24", "dev", self.dev)
        _run("ip", "link", "set", self.dev, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "addr", "add", f"{CLIENT_ADDRESS}/24", "dev", self.peer)
        _run(*inside, "ip", "link", "set", self.peer, "up")
        # ... nor a link that changes state after the pages opened: wait for the carrier
        for _ in range(100):
            state = subprocess.run(
                ["ip", "-o", "link", "show", "dev", self.dev],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
            if "LOWER_UP" in state:
                break
            time.sleep(0.02)
        else:
            raise ShapingUnavailable(f"{self.dev} has no carrier after 2 s")
        self.chromium_wrapper.write_text(
            f'#!/bin/sh\nexec nsenter -t {pid} -n {CHROMIUM} "$@"\n', encoding="utf-8"
        )
        self.chromium_wrapper.chmod(0o755)
        return self

    def limit(self, kbit: int) -> None:
        """Shape what the subscriber receives to ``kbit`` kbit/s (a 150 ms queue)."""
        burst = max(kbit * 1000 // 8 // 20, 3000)  # ~50 ms worth of bytes
        _run(
            "tc", "qdisc", "replace", "dev", self.dev, "root", "tbf",
            "rate", f"{kbit}kbit", "burst", str(burst), "latency", "150ms",
        )  # fmt: skip
        self.rate_kbit = kbit

    def lose(self, percent: float) -> None:
        """Drop ``percent`` % of the UDP datagrams to the subscriber at random (nftables
        ``numgen random``; the kernel here has no netem). Until :meth:`close`.

        The rule sits on the subscriber's end of the veth (its ingress hook, in its
        namespace), so a datagram is lost on the way, after the ``tc`` limit, as on a
        lossy link: the server's ``sendto`` never learns of it. (A drop in the server's
        own output hook would fail that ``sendto`` with EPERM instead.)"""
        if not shutil.which("nft"):
            raise ShapingUnavailable("random loss needs nft (apt-get install nftables)")
        per_mille = round(percent * 10)
        rules = (
            f"table netdev {self.table} {{\n"
            "  chain in {\n"
            f"    type filter hook ingress device {self.peer} priority 0; policy accept;\n"
            f"    meta l4proto udp numgen random mod 1000 < {per_mille} drop\n"
            "  }\n"
            "}\n"
        )
        done = subprocess.run(
            [*self.inside(), "nft", "-f", "-"],
            input=rules,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ShapingUnavailable(f"nft failed: {done.stderr.strip()}")
        self._nft = True

    def jitter(self, most_ms: int) -> None:
        """Delay each UDP datagram to the subscriber by a random 0..``most_ms`` ms, each
        on its own (they may overtake each other, as with netem's jitter), until
        :meth:`close`. The kernel here has no netem: the route to the subscriber goes
        through a TUN device that ``jitter_relay.py`` reads and writes back out on the
        veth (so a :meth:`limit` still applies after the delay)."""
        inside = self.inside()
        shown = subprocess.run(
            [*inside, "ip", "-o", "link", "show", "dev", self.peer],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        mac = shown[shown.index("link/ether") + 1] if "link/ether" in shown else ""
        ours = subprocess.run(
            ["ip", "-o", "link", "show", "dev", self.dev],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        own_mac = ours[ours.index("link/ether") + 1] if "link/ether" in ours else ""
        if not mac or not own_mac:
            raise ShapingUnavailable("cannot read the veth's MAC addresses")
        tun = f"{self.dev}j"
        relay = Path(__file__).with_name("jitter_relay.py")
        self._relay = subprocess.Popen(
            [sys.executable, str(relay), tun, self.dev, own_mac, mac, str(most_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._relay.stdout is not None
        if self._relay.stdout.readline().strip() != "ready":
            raise ShapingUnavailable("the jitter relay did not start")
        # The subscriber's packets come back on the veth, not the TUN the route names:
        # no reverse-path filter.
        for conf in ("all", "default", self.dev, tun):
            Path(f"/proc/sys/net/ipv4/conf/{conf}/rp_filter").write_text("0\n")
        _run("ip", "link", "set", tun, "up")
        _run("ip", "route", "replace", f"{CLIENT_ADDRESS}/32", "dev", tun, "src", SERVER_ADDRESS)
        self.jitter_ms = most_ms

    def inside(self) -> tuple[str, ...]:
        """The command prefix that runs a program in the subscriber's namespace."""
        if self._holder is None:
            raise ShapingUnavailable("the shaped network is not started")
        return ("nsenter", "-t", str(self._holder.pid), "-n")

    def unlimit(self) -> None:
        if self.rate_kbit is not None:
            _run("tc", "qdisc", "del", "dev", self.dev, "root")
            self.rate_kbit = None

    def close(self) -> None:
        if self._relay is not None:
            self._relay.terminate()
            try:
                out, _ = self._relay.communicate(timeout=5)
                self.relay_report = (out or "").strip()
            except subprocess.TimeoutExpired:
                self._relay.kill()
                self._relay.wait()
            self._relay = None
        if self._nft:  # (gone with the namespace anyway; said for the order of things)
            if self._holder is not None:
                subprocess.run(
                    [*self.inside(), "nft", "delete", "table", "netdev", self.table],
                    capture_output=True,
                    check=False,
                )
            self._nft = False
        subprocess.run(["ip", "link", "del", self.dev], capture_output=True, check=False)
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()
            self._holder = None
        shutil.rmtree(self._dir, ignore_errors=True)
