"""A scene's dialogue: which character speaks each sound strip of the sequencer (no bpy).

A strip is matched to its character by its name, `<character>:<anything>` (the character is an object's name:
a face mesh, an armature or a linked character's instance; letter case aside), or by its channel, where the
artist maps channels to characters (`--strip-channel 3=Anna`, or the panel's rows). A channel mapping wins over
the name. Strips that name no character are left alone, and said so."""

from __future__ import annotations

from dataclasses import dataclass

NAME_SEPARATOR = ":"


@dataclass(frozen=True)
class SoundStrip:
    name: str
    channel: int
    path: str  # the sound file, absolute
    start: int  # the frame the sound's first sample plays at
    muted: bool = False
    trimmed: bool = False  # its start or end is cut in the sequencer


@dataclass(frozen=True)
class Line:
    strip: SoundStrip
    character: str  # an object name, as the file spells it


def parse_channel_map(entries: list[str]) -> dict[int, str]:
    """`3=Anna` entries as {3: "Anna"}; a ValueError names the entry that is not CHANNEL=OBJECT."""
    mapping: dict[int, str] = {}
    for entry in entries:
        channel, sep, name = entry.partition("=")
        if not sep or not channel.strip().isdigit() or not name.strip():
            raise ValueError(f"--strip-channel {entry!r} is not CHANNEL=OBJECT (for example 3=Anna)")
        mapping[int(channel)] = name.strip()
    return mapping


def match_lines(strips: list[SoundStrip], characters: list[str],
                channel_map: dict[int, str]) -> tuple[list[Line], list[str]]:
    """The strips that are a character's lines, in the order they play, and a note for each strip left out."""
    by_lower = {c.lower(): c for c in characters}
    lines: list[Line] = []
    notes: list[str] = []
    for strip in sorted(strips, key=lambda s: (s.start, s.channel)):
        if strip.muted:
            notes.append(f"strip {strip.name!r}: muted, left out")
            continue
        mapped = channel_map.get(strip.channel)
        prefix, sep, _rest = strip.name.partition(NAME_SEPARATOR)
        wanted = mapped or (prefix.strip() if sep else "")
        character = by_lower.get(wanted.lower()) if wanted else None
        if character is None:
            why = (f"its channel {strip.channel} is mapped to {mapped!r}, which is not an object here" if mapped else
                   f"its name says {wanted!r}, which is not an object here" if wanted else
                   "it names no character")
            notes.append(f"strip {strip.name!r} (channel {strip.channel}): {why}; name it '<object>:...' or map its "
                         "channel (--strip-channel CHANNEL=OBJECT, or the panel's Channels)")
            continue
        if strip.trimmed:
            notes.append(f"strip {strip.name!r}: trimmed in the sequencer; the whole sound is lip-synced from its "
                         "first sample")
        lines.append(Line(strip, character))
    return lines, notes
