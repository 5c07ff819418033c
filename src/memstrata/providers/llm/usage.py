"""Tokens and money: the price table and the :class:`Usage` a call reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple


class Price(NamedTuple):
    """US dollars per million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float


# List prices at the time of writing; they change, so pass ``prices=`` to override or extend.
# A model name matches its own entry or the longest entry it starts with ("gpt-4o-mini-2024-07-18").
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    "claude-3-haiku": Price(0.25, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-5-sonnet": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
}


def lookup_price(model: str, prices: Mapping[str, Price | tuple[float, float]]) -> Price | None:
    """The price entry for ``model``: exact name first, else the longest key that prefixes it."""
    if model in prices:
        return Price(*prices[model])
    best = max((k for k in prices if model.startswith(k)), key=len, default=None)
    return None if best is None else Price(*prices[best])


@dataclass(frozen=True)
class Usage:
    """Tokens and money spent.

    ``calls`` counts provider responses that were billed (HTTP 200), so a re-ask after an invalid
    answer counts twice. ``cost_known`` is False when any call used a model missing from the price
    table; that call then contributes 0.0 to ``cost_usd``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            cost_usd=self.cost_usd + other.cost_usd,
            cost_known=self.cost_known and other.cost_known,
        )
