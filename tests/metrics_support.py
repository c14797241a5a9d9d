"""Reading ``/metrics`` in tests: the Prometheus text parsed by ``prometheus_client.parser``
(the format a Prometheus server reads), samples looked up by name and labels in any order."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

#: A sample's identity: its name and its labels, sorted.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def samples(text: str) -> dict[SampleKey, float]:
    """Every sample of a /metrics text."""
    found: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[s.name, tuple(sorted(s.labels.items()))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The one sample ``name`` with exactly ``labels``; AssertionError when there is none."""
    key = (name, tuple(sorted(labels.items())))
    found = samples(text)
    assert key in found, f"{name}{labels} missing"
    return found[key]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (e.g. over workers)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and wanted <= set(ls))


def cumulative(text: str) -> dict[SampleKey, float]:
    """The samples that must never decrease: every sample of each counter family, and the
    buckets, count and sum of each histogram that is a real distribution (one with a
    ``_count``; a gauge histogram, a snapshot of what is live, has ``_gcount`` instead).
    ``_created`` samples are the counters' start times, not counts, and are left out."""
    found: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        names = {s.name for s in family.samples}
        if family.type == "counter" or (
            family.type == "histogram" and f"{family.name}_count" in names
        ):
            for s in family.samples:
                if not s.name.endswith("_created"):
                    found[s.name, tuple(sorted(s.labels.items()))] = s.value
    return found


def counter_types(text: str) -> dict[str, str]:
    """Each family's name (as the parser gives it: a counter without ``_total``) and type."""
    return {f.name: f.type for f in text_string_to_metric_families(text)}
