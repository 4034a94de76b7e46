"""Generate the tables of docs/models.md from the model catalog, genai-prices and the emulator rules.

    python -m scripts.models_table           # print the generated sections
    python -m scripts.models_table --write   # rewrite them in docs/models.md
    python -m scripts.models_table --check   # exit 1 if docs/models.md is out of date

Only the text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` is replaced;
the rest of docs/models.md is written by hand. Prices come from genai-prices here, never from the
catalog (the domain layer stays free of it).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from chalicelib.domain.catalog import CATALOG, READ_ON, ModelFacts
from devstack.anthropic.errors import RULES

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"
PRICED_AT = datetime(2026, 12, 1, tzinfo=UTC)
PRICE_FIELDS = (
    ("input_mtok", "input"),
    ("output_mtok", "output"),
    ("cache_write_mtok", "5m write"),
    ("cache_write_1h_mtok", "1h write"),
    ("cache_read_mtok", "cache read"),
)


def _tokens(value: int) -> str:
    if value % 1_000_000 == 0:
        return f"{value // 1_000_000}M"
    return f"{value // 1000}K" if value % 1000 == 0 else str(value)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _money(value: Decimal) -> str:
    text = f"{value:f}"
    if "." in text:
        whole, cents = text.split(".")
        cents = cents.rstrip("0").ljust(2, "0")
        text = f"{whole}.{cents}"
    return f"${text}"


def _price(value: Any) -> str:
    if value is None:
        return "—"
    if hasattr(value, "tiers"):
        tiers = "; ".join(f"{_money(t.price)} above {t.start // 1000}K" for t in value.tiers)
        return f"{_money(value.base)} ({tiers})"
    return _money(value)


def _base(value: Any) -> Decimal:
    """The price below any size tier."""
    base = getattr(value, "base", value)
    assert isinstance(base, Decimal)
    return base


def _flag(facts: ModelFacts, field: str, text: str) -> str:
    unverified = any(note.startswith(f"{field}=") for note in facts.unverified)
    return f"{text}*" if unverified else text


def catalog_table() -> str:
    lines = [
        "| id | aliases | status | context | max output | min cacheable | prefill | thinking "
        "| manual thinking | forced tool_choice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in CATALOG:
        aliases = ", ".join(f"`{a}`" for a in f.aliases) or "—"
        cells = [
            f"`{f.id}`",
            aliases,
            _flag(f, "lifecycle", f.lifecycle),
            _tokens(f.context_window),
            _flag(f, "max_output_tokens", f"{f.max_output_tokens:,}"),
            _flag(f, "min_cacheable_tokens", f"{f.min_cacheable_tokens:,}"),
            _flag(f, "accepts_prefill", _yes(f.accepts_prefill)),
            _flag(f, "thinking", f.thinking),
            _flag(f, "accepts_extended_thinking", _yes(f.accepts_extended_thinking)),
            _flag(f, "accepts_forced_tool_choice", _yes(f.accepts_forced_tool_choice)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "`*` a value assumed (no stored page states it for that model) or contradicted by another "
        'source; the note under "Assumptions and conflicts" says which and why.'
    )
    return "\n".join(lines)


def prices_table() -> str:
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    header = " | ".join(label for _, label in PRICE_FIELDS)
    lines = [
        f"| id | genai-prices model | {header} | read / input |",
        "|---|---|" + "---|" * len(PRICE_FIELDS) + "---|",
    ]
    for f in CATALOG:
        _, model = snapshot.find_provider_model(f.id, None, "anthropic", None)
        prices = model.get_prices(PRICED_AT)
        cells = [_price(getattr(prices, name, None)) for name, _ in PRICE_FIELDS]
        ratio = f"{_base(prices.cache_read_mtok) / _base(prices.input_mtok):g}x"
        lines.append(f"| `{f.id}` | `{model.id}` | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def budgets_table() -> str:
    """The idle budget per model and cache, computed by the product's own code."""
    from chalicelib.adapters.prices import GenaiPriceBook
    from chalicelib.domain.pricing import idle_warm_budget

    book = GenaiPriceBook()
    at_ms = int(PRICED_AT.timestamp() * 1000)
    lines = [
        "| id | read / 5m write | idle warms, 5m cache | read / 1h write | idle warms, 1h cache |",
        "|---|---|---|---|---|",
    ]
    for f in CATALOG:
        rates = book.cache_rates(f.id, at_ms)
        lines.append(
            f"| `{f.id}` | {rates.cache_read:g} / {rates.cache_write_5m:g} "
            f"| {idle_warm_budget(rates, '5m')} | {rates.cache_read:g} / {rates.cache_write_1h:g} "
            f"| {idle_warm_budget(rates, '1h')} |"
        )
    return "\n".join(lines)


def assumptions_list() -> str:
    lines = []
    for f in CATALOG:
        for note in f.unverified:
            lines.append(f"- `{f.id}`: {note}.")
    return "\n".join(lines)


def sources_list() -> str:
    lines = []
    for f in CATALOG:
        lines.append(f"**{f.name}** (`{f.id}`)")
        lines.append("")
        for source in f.sources:
            lines.append(f"- <{source.url}> (read {source.read_on}): {source.gives}.")
        lines.append("")
    return "\n".join(lines).rstrip()


def rules_table() -> str:
    lines = [
        "| rule | when | status | type | message | exact | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in RULES:
        message = rule.message.replace("|", "\\|")
        exact = "yes" if rule.exact else "no: emulator wording"
        source = rule.source.replace("|", "\\|")
        lines.append(
            f"| `{rule.key}` | {rule.applies_to} | {rule.status} | `{rule.error_type}` "
            f"| `{message}` | {exact} | {source} |"
        )
    return "\n".join(lines)


def bedrock_table() -> str:
    """Both providers side by side: the id each is sent, the cache minimum, 1 h, input price."""
    from chalicelib.adapters.prices import GenaiPriceBook
    from chalicelib.domain.catalog import bedrock
    from chalicelib.domain.pricing import Usage

    at_ms = int(PRICED_AT.timestamp() * 1000)
    million = Usage(input_tokens=1_000_000)
    lines = [
        "| id (Anthropic API) | Bedrock base id | profiles | min cacheable API / Bedrock "
        "| 1 h on Bedrock | input $/M API / `global.` / `us.` |",
        "|---|---|---|---|---|---|",
    ]
    for f in CATALOG:
        row = bedrock.lookup(f.id)
        if row is None:
            continue

        def usd(scope: str, model: str = f.id) -> str:
            book = GenaiPriceBook("aws", lambda m: bedrock.bedrock_id(m, scope))
            return f"{book.cost_usd(model, million, at_ms):g}"

        api = f"{GenaiPriceBook().cost_usd(f.id, million, at_ms):g}"
        profiles = ", ".join(f"`{s}.`" for s in row.scopes if s) + (
            ", regional" if "" in row.scopes else ""
        )
        star = "*" if row.unverified else ""
        lines.append(
            f"| `{f.id}` | `{row.base_id}`{star} | {profiles} "
            f"| {f.min_cacheable_tokens:,} / {row.min_cacheable_tokens:,} | {_yes(row.one_hour_cache)} "
            f"| {api} / {usd('global')} / {usd('us')} |"
        )
    lines.append("")
    lines.append('`*` see the row\'s notes under "Bedrock: what is unverified".')
    for f in CATALOG:
        row = bedrock.lookup(f.id)
        for note in row.unverified if row else ():
            lines.append(f"- `{f.id}`: {note}.")
    return "\n".join(lines)


def bedrock_rules_table() -> str:
    from devstack.bedrock import RULES as BEDROCK_RULES

    lines = ["| rule | status | shape | message | exact | source |", "|---|---|---|---|---|---|"]
    for rule in BEDROCK_RULES.values():
        exact = "yes" if rule.exact else "no: stand-in wording"
        message = rule.message.replace("|", "\\|")
        lines.append(
            f"| `{rule.key}` | {rule.status} | `{rule.shape}` | `{message}` | {exact} "
            f"| {rule.source} |"
        )
    return "\n".join(lines)


SECTIONS = {
    "catalog": catalog_table,
    "prices": prices_table,
    "budgets": budgets_table,
    "assumptions": assumptions_list,
    "sources": sources_list,
    "rules": rules_table,
    "bedrock": bedrock_table,
    "bedrock-rules": bedrock_rules_table,
}


def render(document: str) -> str:
    """``document`` with every generated section replaced by its current text."""
    for name, make in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.DOTALL
        )
        match = pattern.search(document)
        if match is None:
            raise ValueError(f"docs/models.md has no generated:{name} section")
        fresh = match.group(1) + make() + "\n" + match.group(2)
        document = document[: match.start()] + fresh + document[match.end() :]
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.models_table")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite docs/models.md")
    action.add_argument("--check", action="store_true", help="fail if docs/models.md is stale")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        for name, make in SECTIONS.items():
            print(f"## {name} (catalog read {READ_ON})\n\n{make()}\n")
        return 0
    current = DOC.read_text()
    fresh = render(current)
    if args.write:
        DOC.write_text(fresh)
    elif fresh != current:
        print("docs/models.md is out of date: python -m scripts.models_table --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
