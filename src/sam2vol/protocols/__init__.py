"""The published evaluation protocols as named, seeded, replayable components.

Each protocol plays the annotating user of one paper on one object of one
volume: it asks a :class:`SimulatedUser` (the only code that reads the
reference mask) where to prompt, prompts a :class:`~sam2vol.session.Session`,
propagates, and is scored after every round. The rules follow the authors'
released code, in the array frame it worked in (:mod:`.frame`); see
``docs/protocols.md`` for each rule and its source lines.

| name               | prompts                                                      |
|--------------------|--------------------------------------------------------------|
| shen2024-mask      | reference mask on the video's centre frame, both ways        |
| shen2024-clicks    | up to 5 clicks on the centre frame at the deepest error      |
| he2024, he2024-code| start voxel and clicks, then the worst slice, 8 rounds       |
| ma2024             | 3D box on the middle slice; forward, reset, backward         |
| dong2024(-3slices) | point at the deepest pixel of the middle slice (or 3 slices) |

Example:
    >>> from sam2vol.protocols import create_protocol
    >>> create_protocol("dong2024-3slices").spec
    'dong2024-3slices'
"""

from sam2vol.protocols.base import (
    PROTOCOL_VERSION,
    Protocol,
    ProtocolResult,
    ProtocolRun,
    RoundResult,
    replay,
)
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
    "PROTOCOL_VERSION",
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
