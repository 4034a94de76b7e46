"""`make package STAGE=dev` with the Bedrock provider (issue 22): the template's conditions evaluated
with `ModelProvider=bedrock` and each `BedrockScope`, as a deploy with `MODEL_PROVIDER=bedrock`
would set them. The functions that call the model may invoke exactly the catalog's Bedrock models
under that scope (their profiles, and the foundation models only through them) and nothing else;
no function holds an Anthropic secret. The package is built by `infra/package.sh` as in
tests/integration/test_infra.py, whose resolver and IAM evaluator are used here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.config import settings_from
from chalicelib.domain.catalog.bedrock import BEDROCK, SCOPES, bedrock_id
from scripts import bedrock_iam
from tests.integration.test_infra import (
    ACCOUNT,
    FUNCTIONS,
    NEEDS,
    REGION,
    SECRET_ARN,
    STACK,
    Resolver,
    _as_list,
    _deploy,
    all_policy_documents,
    allowed,
    assert_no_statement_grants_every_resource,
    fake_aws,
    function_statements,
    packaged,
    template,
)

__all__ = ["fake_aws", "packaged", "template"]  # fixtures, shared with test_infra's build

MODEL_FUNCTIONS = frozenset(f for f, needs in NEEDS.items() if "anthropic" in needs)
INVOKE = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
# Regions a profile may route to (any: the destinations are AWS's to change).
DESTINATIONS = ("us-east-1", "us-west-2", "eu-central-1", "eu-west-1", "ap-northeast-1")
NOT_IN_CATALOG = ("anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-pro-v1:0")
# IAM user guide, "IAM and AWS STS quotas" (reference_iam-quotas.html, read 2026-12-07): a role's
# inline policies together, "Role policy size cannot exceed 10,240 characters", whitespace not
# counted. infra/deploy.sh allows stack names of up to 40 characters.
ROLE_POLICY_CHARACTERS = 10_240
LONGEST_STACK = "s" * 40


def bedrock(template: dict[str, Any], scope: str, **parameters: str) -> Resolver:
    return Resolver(template, {"ModelProvider": "bedrock", "BedrockScope": scope, **parameters})


def invoked(sent_id: str, scope: str, region: str = REGION, account: str = ACCOUNT) -> str:
    """The resource InvokeModel authorizes for the id the adapter sends (a profile, or the model)."""
    if scope:
        return f"arn:aws:bedrock:{region}:{account}:inference-profile/{sent_id}"
    return f"arn:aws:bedrock:{region}::foundation-model/{sent_id}"


def bedrock_resources(resolver: Resolver, function: str) -> set[str]:
    return {
        str(arn)
        for statement in function_statements(resolver, function)
        if any(str(action).startswith("bedrock") for action in _as_list(statement["Action"]))
        for arn in _as_list(statement["Resource"])
    }


def expected_resources(scope: str) -> set[str]:
    """What the roles must be granted under `scope`, from the catalog and the IAM pages' forms."""
    rows = [row for row in BEDROCK if scope in row.scopes]
    if not scope:
        return {invoked(row.base_id, scope) for row in rows}
    found = {invoked(f"{scope}.{row.base_id}", scope) for row in rows}
    found |= {f"arn:aws:bedrock:*::foundation-model/{row.base_id}" for row in rows}
    if scope == "global":
        found |= {f"arn:aws:bedrock:::foundation-model/{row.base_id}" for row in rows}
    return found


@pytest.mark.parametrize("scope", SCOPES)
def test_model_functions_invoke_exactly_the_catalog_models(
    template: dict[str, Any], scope: str
) -> None:
    resolver = bedrock(template, scope)
    for function in FUNCTIONS:
        settings = settings_from({**resolver.env(function), "AWS_REGION": REGION})
        assert (settings.model_provider, settings.bedrock_scope) == ("bedrock", scope)
        mine = function_statements(resolver, function)
        may = function in MODEL_FUNCTIONS
        for row in BEDROCK:
            offered = may and scope in row.scopes
            target = invoked(bedrock_id(row.model, settings.bedrock_scope), scope)
            for action in INVOKE:
                assert allowed(mine, action, target) == offered, (function, target, action)
            if scope:
                _routes_only_through_the_profile(mine, row.base_id, target, offered)
        if may:
            assert bedrock_resources(resolver, function) == expected_resources(scope)
        else:
            assert bedrock_resources(resolver, function) == set()


def _routes_only_through_the_profile(
    mine: list[dict[str, Any]], base_id: str, profile: str, offered: bool
) -> None:
    through = {"bedrock:InferenceProfileArn": profile}
    other = {"bedrock:InferenceProfileArn": profile.replace(REGION, "us-west-2")}
    for region in DESTINATIONS:
        model = f"arn:aws:bedrock:{region}::foundation-model/{base_id}"
        assert allowed(mine, "bedrock:InvokeModel", model, through) == offered, model
        assert not allowed(mine, "bedrock:InvokeModel", model), f"{model} without the profile"
        assert not allowed(mine, "bedrock:InvokeModel", model, other), "another region's profile"
    if profile.split("/")[-1].startswith("global."):
        regionless = f"arn:aws:bedrock:::foundation-model/{base_id}"
        assert allowed(mine, "bedrock:InvokeModel", regionless, through) == offered


@pytest.mark.parametrize("scope", SCOPES)
def test_nothing_else_is_invocable(template: dict[str, Any], scope: str) -> None:
    resolver = bedrock(template, scope)
    default = bedrock_id(settings_from({}).default_model, scope)
    base = default.split(".", 1)[1] if scope else default
    for function in sorted(MODEL_FUNCTIONS):
        mine = function_statements(resolver, function)
        assert allowed(mine, "bedrock:InvokeModel", invoked(default, scope))
        for outsider in NOT_IN_CATALOG:
            sent = f"{scope}.{outsider}" if scope else outsider
            assert not allowed(mine, "bedrock:InvokeModel", invoked(sent, scope)), outsider
            model = f"arn:aws:bedrock:us-east-1::foundation-model/{outsider}"
            through = {"bedrock:InferenceProfileArn": invoked(sent, scope)}
            assert not allowed(mine, "bedrock:InvokeModel", model, through), outsider
        for other in ("global", "us", "eu", "apac", "jp", ""):
            if other != scope:
                sent = f"{other}.{base}" if other else base
                assert not allowed(mine, "bedrock:InvokeModel", invoked(sent, other)), other
        assert not allowed(mine, "bedrock:InvokeModel", invoked(default, scope, "us-west-2"))
        if scope:  # a foundation model's ARN names no account
            foreign = invoked(default, scope, REGION, "9" * 12)
            assert not allowed(mine, "bedrock:InvokeModel", foreign)
        for action in ("bedrock:InvokeAgent", "bedrock:CreateModelInvocationJob"):
            assert not allowed(mine, action, invoked(default, scope)), action
        assert not allowed(mine, "bedrock-mantle:CreateInference", "*")
        # No wildcard in a model or profile name: every grant names one catalog model.
        for arn in bedrock_resources(resolver, function):
            assert "*" not in arn.split("/", 1)[1], arn
    assert_no_statement_grants_every_resource(resolver)


@pytest.mark.parametrize("scope", SCOPES)
def test_each_role_policy_fits_iams_size_quota(template: dict[str, Any], scope: str) -> None:
    """Every catalog row adds ARNs to the model roles: the quota bounds how many rows there can be."""
    resolver = bedrock(template, scope)
    for role in ("WarmRole", "GenerateRole", "ApiRole"):
        policies = resolver.resolve(template["Resources"][role]["Properties"]["Policies"])
        text = json.dumps(policies, separators=(",", ":")).replace(STACK, LONGEST_STACK)
        assert len("".join(text.split())) <= ROLE_POLICY_CHARACTERS, (role, len(text))


def test_a_row_offered_without_a_scope_is_not_granted_under_it(template: dict[str, Any]) -> None:
    missing = [(row, scope) for row in BEDROCK for scope in SCOPES if scope not in row.scopes]
    assert missing, "the catalog has no row without some scope: this test checks nothing"
    for row, scope in missing:
        mine = function_statements(bedrock(template, scope), "Generate")
        assert not allowed(
            mine, "bedrock:InvokeModel", invoked(bedrock_id(row.model, scope), scope)
        )


@pytest.mark.parametrize("scope", SCOPES)
def test_a_bedrock_stack_holds_no_anthropic_secret(template: dict[str, Any], scope: str) -> None:
    # Even when the deployer passes a secret ARN anyway.
    resolver = bedrock(template, scope, AnthropicApiKeySecretArn=SECRET_ARN)
    for function in FUNCTIONS:
        env = resolver.env(function)
        assert "ANTHROPIC_API_KEY_SECRET_ID" not in env and "ANTHROPIC_API_KEY" not in env
        assert SECRET_ARN not in json.dumps(env)
        settings = settings_from({**env, "AWS_REGION": REGION})
        assert settings.anthropic_api_key_secret_id == settings.anthropic_api_key == ""
        mine = function_statements(resolver, function)
        assert not allowed(mine, "secretsmanager:GetSecretValue", SECRET_ARN), function
        if function in MODEL_FUNCTIONS:
            secrets = [s for s in mine if "secretsmanager" in json.dumps(s["Action"])]
            assert secrets == [], function
    policies = json.dumps(list(all_policy_documents(resolver)))
    assert SECRET_ARN not in policies


def test_an_anthropic_stack_has_no_bedrock_grant(template: dict[str, Any]) -> None:
    for scope in SCOPES:  # the scope alone changes nothing
        resolver = Resolver(
            template, {"AnthropicApiKeySecretArn": SECRET_ARN, "BedrockScope": scope}
        )
        assert "bedrock" not in json.dumps(list(all_policy_documents(resolver)))
        for function in FUNCTIONS:
            assert resolver.env(function)["MODEL_PROVIDER"] == "anthropic"
            assert resolver.env(function)["ANTHROPIC_API_KEY_SECRET_ID"] == SECRET_ARN


def test_the_parameters_match_the_code(template: dict[str, Any]) -> None:
    defaults = settings_from({})
    provider = template["Parameters"]["ModelProvider"]
    assert (provider["Default"], sorted(provider["AllowedValues"])) == (
        defaults.model_provider,
        ["anthropic", "bedrock"],
    )
    scope = template["Parameters"]["BedrockScope"]
    assert scope["Default"] == defaults.bedrock_scope
    assert sorted(scope["AllowedValues"]) == sorted(SCOPES)


def test_packaging_refuses_a_scope_list_other_than_the_catalogs(tmp_path: Path) -> None:
    document: dict[str, Any] = {
        "Parameters": {"BedrockScope": {"AllowedValues": ["global", "us"]}},
        "Conditions": {"IsBedrock": {}},
        "Resources": {
            role: {"Properties": {"Policies": [{"PolicyDocument": {"Statement": []}}]}}
            for role in bedrock_iam.ROLES
        },
    }
    path = tmp_path / "sam.yaml"
    path.write_text(yaml.safe_dump(document))
    assert bedrock_iam.main([str(path)]) == 1
    assert yaml.safe_load(path.read_text()) == document
    document["Parameters"]["BedrockScope"]["AllowedValues"] = list(SCOPES)
    path.write_text(yaml.safe_dump(document))
    assert bedrock_iam.main([str(path)]) == 0
    # Run twice (a template packaged already): refused, not granted twice.
    assert bedrock_iam.main([str(path)]) == 1
    assert "&id" not in path.read_text() and "*id" not in path.read_text()


# --- deploy.sh --------------------------------------------------------------------------------


def test_a_first_bedrock_deploy_needs_no_anthropic_secret(fake_aws: dict[str, str]) -> None:
    run = _deploy({**fake_aws, "MODEL_PROVIDER": "bedrock", "BEDROCK_SCOPE": "eu"})
    assert run.returncode == 0, run.stdout + run.stderr
    deploy = [c for c in Path(fake_aws["AWS_LOG"]).read_text().splitlines() if "deploy" in c][-1]
    assert "ModelProvider=bedrock" in deploy and "BedrockScope=eu" in deploy
    assert "AnthropicApiKeySecretArn" not in deploy
    # The regional scope is the empty value, passed as such.
    run = _deploy({**fake_aws, "MODEL_PROVIDER": "bedrock", "BEDROCK_SCOPE": ""})
    assert run.returncode == 0, run.stdout + run.stderr
    deploy = [c for c in Path(fake_aws["AWS_LOG"]).read_text().splitlines() if "deploy" in c][-1]
    assert "BedrockScope= " in deploy + " "


def test_deploy_refuses_an_unknown_provider(fake_aws: dict[str, str]) -> None:
    run = _deploy(
        {**fake_aws, "MODEL_PROVIDER": "vertex", "ANTHROPIC_API_KEY_SECRET_ARN": SECRET_ARN}
    )
    assert run.returncode != 0
    assert "MODEL_PROVIDER must be anthropic or bedrock" in run.stderr
    assert "cloudformation deploy" not in Path(fake_aws["AWS_LOG"]).read_text()
    # Unset, the stack keeps its provider: no parameter is passed.
    run = _deploy({**fake_aws, "STACK_EXISTS": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    deploy = [c for c in Path(fake_aws["AWS_LOG"]).read_text().splitlines() if "deploy" in c][-1]
    assert "ModelProvider" not in deploy and "BedrockScope" not in deploy
