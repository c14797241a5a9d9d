"""A recording's live captions as WebVTT (``captions.vtt`` beside its files): the event's kept
caption lines (:mod:`webinar.interaction.store`) mapped onto the recording's time
(:mod:`webinar.recordings.captions`). The dashboard, the API and the published player page
serve it under their own access rules (those of the recording's files)."""

from __future__ import annotations

from aiohttp import web

from webinar.interaction import store as ist
from webinar.recordings.captions import cues, webvtt
from webinar.recordings.library import RecordingInfo
from webinar.storage.store import Store

VTT_NAME = "captions.vtt"


def spans_of(info: RecordingInfo) -> list[tuple[float, float]]:
    """The recording's wall-clock spans (one from its start for those made before they were
    kept: their pauses are not known)."""
    if info.spans:
        return list(info.spans)
    start = info.started_at.timestamp()
    return [(start, start + info.trimmed_seconds + info.duration)]


async def recording_vtt(store: Store, info: RecordingInfo, file_name: str | None = None) -> str:
    """The captions of ``info`` as WebVTT, on the recording's time or (``file_name``, one of
    its files) on that file's, which starts ``offset`` seconds into the recording."""
    spans = spans_of(info)
    shift = 0.0
    if file_name:
        entry = next((f for f in info.files if f.get("name") == file_name), None)
        if entry is None:
            raise KeyError(file_name)
        shift = float(entry.get("offset", 0.0))
    since, until = spans[0][0], spans[-1][1]
    event_id = info.event_id
    lines = await store.run(
        lambda core: ist.caption_lines(core, event_id, since=since, until=until)
    )
    return webvtt(
        cues(
            [(line.at, line.text) for line in lines],
            spans,
            trimmed=info.trimmed_seconds,
            duration=info.duration,
            shift=shift,
        )
    )


async def has_captions(store: Store, info: RecordingInfo) -> bool:
    spans = spans_of(info)
    since, until, event_id = spans[0][0], spans[-1][1], info.event_id
    found = await store.run(
        lambda core: ist.caption_lines(core, event_id, since=since, until=until, limit=1)
    )
    return bool(found)


def vtt_response(text: str, *, download_name: str | None = None) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if download_name is not None:
        headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return web.Response(text=text, content_type="text/vtt", charset="utf-8", headers=headers)
