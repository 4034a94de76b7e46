"""Package-time step: the model-calling roles' Bedrock grant, written from the catalog.

    python -m scripts.bedrock_iam build/dev/sam.yaml

`infra/package.sh` runs it on the merged template, so the models the functions may invoke are
the rows of `chalicelib/domain/catalog/bedrock.py` and never a hand-kept copy. It adds to WarmRole
and GenerateRole, under the `IsBedrock` condition, statements to their inline policy allowing
`bedrock:InvokeModel` and `bedrock:InvokeModelWithResponseStream` on, for the deployed
`BedrockScope`:

- a profile scope (`global`, `us`, `eu`): each catalog row's system inference profile in the
  stack's Region, `arn:aws:bedrock:{region}:{account}:inference-profile/{scope}.{base id}`, and the
  foundation model it routes to in any Region, `arn:aws:bedrock:*::foundation-model/{base id}`
  (`global` also the region-less `arn:aws:bedrock:::foundation-model/{base id}`), the model grant
  holding only when the call comes through one of those profiles (`bedrock:InferenceProfileArn`);
- the regional scope (""): the foundation model in the stack's Region only.

Sources (read 2026-12-07): Bedrock user guide "Prerequisites for inference profiles"
(docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html: the resource forms
`arn:aws:bedrock:*::foundation-model/*` and `arn:aws:bedrock:*:*:inference-profile/*`; a profile
in Resource needs the foundation model "in each Region associated with it"); "Geographic
cross-Region inference", section "IAM policy requirements" (.../geographic-cross-region-inference.html:
the profile in the source Region, the foundation model in the source and every destination Region,
a `bedrock:InferenceProfileArn` StringEquals condition on the model statement); "Global
cross-Region inference" (.../global-cross-region-inference.html), whose section "IAM policy
requirements" was found but not read in full: the global profile and the region-less foundation
model ARN as recorded in ../shared/NOTES.md "Amazon Bedrock". The destination Regions of a profile
are AWS's to change, hence `*` for the model's Region, bounded by the profile condition; what is
unverified about this grant is listed in docs/models.md.

It refuses (exit 1) a template whose `BedrockScope` parameter does not allow exactly the catalog's
scopes: the last scope is the chain's else branch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from chalicelib.domain.catalog.bedrock import BEDROCK, SCOPES

ROLES: tuple[str, ...] = ("WarmRole", "GenerateRole")
ACTIONS: tuple[str, ...] = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
SIDS: tuple[str, ...] = ("InvokeProfiles", "InvokeModelsThroughProfiles", "InvokeRegionalModels")
CONDITION = "IsBedrock"
PARAMETER = "BedrockScope"
PREFIX = "arn:${AWS::Partition}:bedrock"


def scope_condition(scope: str) -> str:
    """The condition that holds when the stack is deployed with this scope."""
    return f"BedrockScope{scope.capitalize() if scope else 'Regional'}"


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _statement(sid: str, resources: list[Any], condition: dict[str, Any] | None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(ACTIONS),
        "Resource": resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def statements(scope: str) -> list[dict[str, Any]]:
    """The grant for one scope: only the catalog rows offered under it."""
    bases = [row.base_id for row in BEDROCK if scope in row.scopes]
    if not scope:
        regional = [_sub(f"{PREFIX}:${{AWS::Region}}::foundation-model/{b}") for b in bases]
        return [_statement("InvokeRegionalModels", regional, None)]
    profiles = [
        _sub(f"{PREFIX}:${{AWS::Region}}:${{AWS::AccountId}}:inference-profile/{scope}.{b}")
        for b in bases
    ]
    models = [_sub(f"{PREFIX}:*::foundation-model/{b}") for b in bases]
    if scope == "global":
        models += [_sub(f"{PREFIX}:::foundation-model/{b}") for b in bases]
    through = {"StringEquals": {"bedrock:InferenceProfileArn": profiles}}
    return [
        _statement("InvokeProfiles", profiles, None),
        _statement("InvokeModelsThroughProfiles", models, through),
    ]


NO_VALUE = {"Ref": "AWS::NoValue"}


def grant() -> list[dict[str, Any]]:
    """Statement items for a role's policy: each absent unless IsBedrock, chosen by the scope."""
    per_scope = {scope: statements(scope) for scope in SCOPES}
    width = max(len(items) for items in per_scope.values())
    items = []
    for position in range(width):
        chain: Any = _at(per_scope[SCOPES[-1]], position)
        for scope in reversed(SCOPES[:-1]):
            chain = {"Fn::If": [scope_condition(scope), _at(per_scope[scope], position), chain]}
        items.append({"Fn::If": [CONDITION, chain, NO_VALUE]})
    return items


def _at(items: list[dict[str, Any]], position: int) -> Any:
    return items[position] if position < len(items) else NO_VALUE


def add_grant(template: dict[str, Any]) -> None:
    """Adds the scope conditions and the policy to each model-calling role, in place."""
    allowed = template.get("Parameters", {}).get(PARAMETER, {}).get("AllowedValues")
    if allowed is None or sorted(allowed) != sorted(SCOPES):
        raise ValueError(
            f"{PARAMETER}'s AllowedValues {allowed!r} must be the catalog's scopes {list(SCOPES)!r}"
        )
    if CONDITION not in template.get("Conditions", {}):
        raise ValueError(f"the template has no {CONDITION} condition")
    for scope in SCOPES[:-1]:
        equals = {"Fn::Equals": [{"Ref": PARAMETER}, scope]}
        template["Conditions"][scope_condition(scope)] = equals
    for role in ROLES:
        (policy,) = template["Resources"][role]["Properties"]["Policies"]
        listed = policy["PolicyDocument"]["Statement"]
        if any(_names(item, SIDS) for item in listed):
            raise ValueError(f"{role} already has a Bedrock grant")
        listed.extend(grant())


def _names(item: Any, sids: tuple[str, ...]) -> bool:
    text = json.dumps(item)
    return any(f'"Sid": "{sid}"' in text for sid in sids)


class _NoAliases(yaml.SafeDumper):  # type: ignore[misc]
    # CloudFormation refuses YAML aliases; the profile list is both a Resource and a Condition.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path, help="the merged template (sam.yaml), rewritten")
    args = parser.parse_args(argv)
    template = yaml.safe_load(args.template.read_text(encoding="utf-8"))
    try:
        add_grant(template)
    except ValueError as error:
        print(f"bedrock_iam: {error}", file=sys.stderr)
        return 1
    text = yaml.dump(template, Dumper=_NoAliases, allow_unicode=True, sort_keys=False)
    args.template.write_text(text, encoding="utf-8")
    print(f"bedrock_iam: Bedrock grant in {', '.join(ROLES)} ({len(BEDROCK)} catalog rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
