"""Merge CloudFormation fragments into the template `chalice package` wrote, and expand its aliases.

    python -m scripts.merge_fragments build/dev/sam.yaml infra/observability.yaml

A fragment is merged the way `chalice package --merge-template` merges `infra/template.yaml`
(Chalice's own `TemplateDeepMerger`: mappings key by key, a list replaces the list it meets), so
both files follow one rule. Fragments exist so that separate concerns (alarms and dashboard in
`infra/observability.yaml`) are edited apart from `infra/template.yaml`. A merge that would
silently replace someone else's definition is refused instead:

- a Parameter, Condition, Rule or Output the template already has;
- a Resource with a `Type` the template already has (a fragment may extend an existing resource,
  e.g. add an environment variable to a function, only by leaving `Type` out).

The template is written back with every YAML alias expanded: Chalice's writer emits `&id001` /
`*id001` for objects it shares, and CloudFormation refuses YAML aliases.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

UNIQUE_SECTIONS = ("Parameters", "Conditions", "Rules", "Outputs")


class MergeConflict(ValueError):
    """The fragment redefines something the template already defines."""


class _NoAliasDumper(yaml.SafeDumper):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def load_fragment(text: str) -> dict[str, Any]:
    """A fragment in CloudFormation's short YAML form (`!Ref`, `!Sub`, ...), as Chalice reads one."""
    from chalice.package import YAMLTemplateSerializer

    loaded = YAMLTemplateSerializer().load_template(text)
    if not isinstance(loaded, dict):
        raise MergeConflict("a fragment is a mapping of template sections")
    return loaded


def conflicts(template: Mapping[str, Any], fragment: Mapping[str, Any]) -> list[str]:
    found = [
        f"{section}.{name}"
        for section in UNIQUE_SECTIONS
        for name in fragment.get(section) or {}
        if name in (template.get(section) or {})
    ]
    resources = template.get("Resources") or {}
    for logical, resource in (fragment.get("Resources") or {}).items():
        if logical in resources and "Type" in resource:
            found.append(f"Resources.{logical} (a Type: the fragment would replace it)")
        if logical not in resources and "Type" not in resource:
            found.append(f"Resources.{logical} (no Type, and nothing to extend)")
    return found


def merge(template: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    from chalice.package import TemplateDeepMerger

    problems = conflicts(template, fragment)
    if problems:
        raise MergeConflict("the fragment redefines " + ", ".join(problems))
    merged: dict[str, Any] = TemplateDeepMerger().merge(fragment, template)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("fragments", type=Path, nargs="*")
    args = parser.parse_args(argv)
    template = yaml.safe_load(args.template.read_text(encoding="utf-8"))
    for fragment in args.fragments:
        try:
            template = merge(template, load_fragment(fragment.read_text(encoding="utf-8")))
        except MergeConflict as error:
            print(f"error: {fragment}: {error}", file=sys.stderr)
            return 1
    text = yaml.dump(template, Dumper=_NoAliasDumper, allow_unicode=True, sort_keys=False)
    args.template.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
