"""What the catalog records of each model, and where each fact was read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "none": thinks only when a request enables it (the docs' "Extended"); we never do.
# "adaptive": thinks by default when it judges it useful (the docs' "Adaptive").
# "always": adaptive thinking that cannot be turned off (the docs' "Adaptive (always on)").
ThinkingMode = Literal["none", "adaptive", "always"]
Lifecycle = Literal["active", "legacy", "deprecated"]


@dataclass(frozen=True)
class Source:
    url: str
    gives: str  # which facts of the row this page supports
    read_on: str  # ISO date


@dataclass(frozen=True)
class ModelFacts:
    id: str  # the id Anthropic's models overview lists first (an alias where one exists)
    name: str
    # Other ids the API accepts for the same model (dated snapshots), all resolved to `id`.
    aliases: tuple[str, ...]
    lifecycle: Lifecycle
    context_window: int
    max_output_tokens: int
    # Prefixes shorter than this (tokens) are silently not cached (prompt-caching docs).
    min_cacheable_tokens: int
    # False: a request whose last message is an assistant message gets a 400.
    accepts_prefill: bool
    thinking: ThinkingMode
    sources: tuple[Source, ...]
    # Manual extended thinking (`thinking.type: "enabled"` with `budget_tokens`): Claude 4.7 and
    # later answer it with a 400, while `thinking` alone cannot tell a 4.6 model (deprecated but
    # accepted) from a 4.7 one; the emulator needs the difference to refuse what the API refuses.
    accepts_extended_thinking: bool = True
    # Forced tool use (`tool_choice` any/tool): a 400 on Opus 5.5, Sonnet 5.5 and Fable 5.1+.
    accepts_forced_tool_choice: bool = True
    # "field=value: why" for each fact of this row that no stored page states for this model (an
    # assumption) or that another source contradicts; docs/models.md marks those values.
    unverified: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)
