"""The published evaluation protocols as named, seeded, replayable components.

Each protocol plays the annotating user of one paper on one object of one
volume: it asks a :class:`SimulatedUser` (the only code that reads the
reference mask) where to prompt, prompts a :class:`~sam2vol.session.Session`,
propagates, and is scored after every round. See ``docs/protocols.md``.

| name               | prompts                                                      |
|--------------------|--------------------------------------------------------------|
| shen2024-mask      | reference mask on the centre slice, both ways, no reset      |
| shen2024-clicks    | up to 5 clicks on the centre slice at the deepest error      |
| he2024, he2024-code| clicks on up to 8 slices, the worst slice corrected next     |
| ma2024             | box on the middle slice; forward, reset, backward            |
| dong2024(-3slices) | point at the deepest pixel of the middle slice (or 3 slices) |

Example:
    >>> from sam2vol.protocols import create_protocol
    >>> create_protocol("dong2024-3slices").spec
    'dong2024-3slices'
"""

from sam2vol.protocols.base import Protocol, ProtocolResult, ProtocolRun, RoundResult, replay
from sam2vol.protocols.registry import (
    PROTOCOLS,
    create_protocol,
    describe_protocols,
    protocol_spec,
)
from sam2vol.protocols.rules import Click
from sam2vol.protocols.user import SimulatedUser

__all__ = [
    "PROTOCOLS",
    "Click",
    "Protocol",
    "ProtocolResult",
    "ProtocolRun",
    "RoundResult",
    "SimulatedUser",
    "create_protocol",
    "describe_protocols",
    "protocol_spec",
    "replay",
]
