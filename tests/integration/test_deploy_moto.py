"""`infra/deploy.sh` with the REAL AWS CLI (`awscli` from PyPI) against moto's server on localhost,
and the SAM-expanded template created in moto's CloudFormation.

Why not a fake `aws`: a fake that exits 0 never saw that the CLI refuses a template over 51,200
bytes without `--s3-bucket` (NOTES.md, "AWS deploy facts"). Here the CLI makes every call itself:
it uploads the code and the template to moto's S3 and creates the change set in moto's
CloudFormation, which reads the template back from S3.

moto's gaps, filled as narrowly as possible and listed in docs/operations.md ("Deploy rehearsal"):
- moto has no `lambda get-account-settings`: `AWS_CLI` is a wrapper that answers only that call,
  with the response shape of the Lambda API reference (GetAccountSettings, AccountLimit), and runs
  the real CLI for everything else.
- moto reads a `TemplateURL` only when its host is `localhost` (moto/cloudformation/utils.py,
  get_stack_from_s3_url), hence `http://localhost:<port>`.
- moto does not run the SAM transform: `aws-sam-translator`, the library behind it, expands the
  packaged template first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.ports import free_ports

pytestmark = pytest.mark.xdist_group("deploy-moto")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK = "cache-warming-dev"
BUCKET = f"cache-warming-artifacts-{ACCOUNT}-{REGION}"
INLINE_LIMIT = 51_200  # CloudFormation's TemplateBody limit (NOTES.md, "AWS deploy facts")

# Resource types of the expanded template that moto's CloudFormation does not model: moto logs "No
# Moto CloudFormation support for <type>" and creates nothing (moto 5.2.5,
# moto/cloudformation/parsing.py, parse_resource). Their service APIs mostly exist in moto; the
# CloudFormation glue does not. docs/operations.md lists the same.
MOTO_UNMODELLED = frozenset(
    {
        "AWS::ApiGateway::Account",
        "AWS::ApiGateway::Stage",
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Deployment",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Stage",
        "AWS::CloudWatch::Alarm",
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Scheduler::ScheduleGroup",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Subscription",
    }
)
# Modelled by moto, but its AWS::ApiGateway::RestApi ignores `Body` (the OpenAPI definition
# Chalice writes): the API has no methods, so moto refuses its Deployment ("The REST API doesn't
# contain any methods"). Left out of the moto stack; what refers to it gets a placeholder.
MOTO_BODYLESS_REST = ("AWS::ApiGateway::Deployment",)


# --- moto's server and the CLI ------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto's server did not start")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


# Answers the one call moto lacks with the shape of the Lambda API reference (GetAccountSettings:
# AccountLimit.ConcurrentExecutions / UnreservedConcurrentExecutions); runs the real CLI otherwise.
AWS_WRAPPER = r"""#!/usr/bin/env bash
if [[ "$1 $2" == "lambda get-account-settings" ]]; then
    printf '%s\t%s\n' "$QUOTA" "$UNRESERVED"
    exit 0
fi
exec "$REAL_AWS" "$@"
"""


@pytest.fixture(scope="module")
def cli_env(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("deploy-moto")
    wrapper = work / "aws"
    wrapper.write_text(AWS_WRAPPER)
    wrapper.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "JWT_", "ALARM_", "ARTIFACT_", "ANTHROPIC_"))
    }
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=str(work / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-credentials"),
        AWS_CLI=str(wrapper),
        REAL_AWS=str(BIN / "aws"),
        QUOTA="1000",
        UNRESERVED="1000",
    )
    return env


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def anthropic_secret_arn(endpoint: str) -> str:
    created = _client("secretsmanager", endpoint).create_secret(
        Name="cache-warming/anthropic-api-key", SecretString="sk-ant-not-a-key"
    )
    return str(created["ARN"])


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`infra/package.sh` of a copy of the project (empty requirements.txt: offline and fast)."""
    work = tmp_path_factory.mktemp("deploy-package")
    project = work / "project"
    (project / ".chalice").mkdir(parents=True)
    shutil.copy2(ROOT / "app.py", project / "app.py")
    shutil.copytree(
        ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(ROOT / ".chalice" / "config.json", project / ".chalice" / "config.json")
    (project / "requirements.txt").write_text("")
    out = work / "build" / "dev"
    env = {**os.environ, "PROJECT_DIR": str(project), "OUT_DIR": str(out), "BIN": str(BIN)}
    run = subprocess.run(
        ["bash", str(ROOT / "infra" / "package.sh"), "dev"],
        env={**env, "SKIP_LINT": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def _deploy(env: dict[str, str], out: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "infra" / "deploy.sh"), "dev"],
        env={**env, "OUT_DIR": str(out), **extra},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def deployed(cli_env: dict[str, str], out_dir: Path, anthropic_secret_arn: str) -> Path:
    run = _deploy(
        cli_env, out_dir, ANTHROPIC_API_KEY_SECRET_ARN=anthropic_secret_arn, CHANGESET_ONLY="1"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out_dir / "packaged.yaml"


# --- the deploy -----------------------------------------------------------------------------------


def test_make_deploy_reaches_a_change_set_cloudformation_accepts(
    deployed: Path, endpoint: str
) -> None:
    # The real failure this guards: over the inline limit, the CLI refuses without --s3-bucket.
    assert deployed.stat().st_size > INLINE_LIMIT
    cloudformation = _client("cloudformation", endpoint)
    (summary,) = cloudformation.list_change_sets(StackName=STACK)["Summaries"]
    assert summary["Status"] == "CREATE_COMPLETE", summary
    assert summary["ExecutionStatus"] == "AVAILABLE"
    change_set = cloudformation.describe_change_set(
        StackName=STACK, ChangeSetName=summary["ChangeSetName"]
    )
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in change_set["Parameters"]}
    assert parameters["WarmReservedConcurrency"] == "300"
    assert parameters["GenerateReservedConcurrency"] == "100"
    # Both the code and the template went to the artifact bucket.
    keys = [o["Key"] for o in _client("s3", endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(key.startswith(f"{STACK}/templates/") for key in keys), keys
    assert any(key.startswith(f"{STACK}/") and "/" not in key[len(STACK) + 1 :] for key in keys)


def test_deploy_refuses_before_any_cloudformation_call_when_the_quota_is_too_small(
    cli_env: dict[str, str], out_dir: Path, anthropic_secret_arn: str, endpoint: str
) -> None:
    stack = "cache-warming-small"
    run = _deploy(
        {**cli_env, "QUOTA": "400", "UNRESERVED": "400"},
        out_dir,
        ANTHROPIC_API_KEY_SECRET_ARN=anthropic_secret_arn,
        STACK_NAME=stack,
        CHANGESET_ONLY="1",
    )
    assert run.returncode != 0
    assert "Lambda keeps 100 unreserved" in run.stderr, run.stderr
    stacks = _client("cloudformation", endpoint).list_stacks()["StackSummaries"]
    assert stack not in [s["StackName"] for s in stacks]


def test_the_rollback_recipe_redeploys_a_kept_template_through_s3() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    recipe = operations[operations.index("## Roll back") :]
    recipe = recipe[: recipe.index("\n### ")]
    assert "aws cloudformation deploy" in recipe
    assert "--s3-bucket" in recipe


# --- the SAM-expanded template in moto's CloudFormation ------------------------------------------


def _expand(packaged: Path, parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        # The template names managed policies by ARN only: nothing to look up.
        def load(self) -> dict[str, str]:
            return {}

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)  # the translator builds ARNs for this Region
        expanded = transform(yaml_parse(packaged.read_text()), parameters, NoManagedPolicies())
    return dict(expanded)


def _without(value: Any, gone: frozenset[str]) -> Any:
    """`value` with every Ref/GetAtt to a resource in `gone` replaced by a placeholder string."""
    if isinstance(value, dict):
        if value.keys() == {"Ref"} and value["Ref"] in gone:
            return f"left-out-{value['Ref']}"
        if value.keys() == {"Fn::GetAtt"} and value["Fn::GetAtt"][0] in gone:
            return f"left-out-{value['Fn::GetAtt'][0]}"
        return {key: _without(item, gone) for key, item in value.items()}
    if isinstance(value, list):
        return [_without(item, gone) for item in value]
    return value


def _for_moto(expanded: dict[str, Any]) -> dict[str, Any]:
    gone = frozenset(k for k, v in expanded["Resources"].items() if v["Type"] in MOTO_BODYLESS_REST)
    resources = {k: v for k, v in expanded["Resources"].items() if k not in gone}
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if depends:
            kept = [
                d for d in ([depends] if isinstance(depends, str) else depends) if d not in gone
            ]
            resource["DependsOn"] = kept
        if resource["Type"] == "AWS::ApiGateway::RestApi":
            # CloudFormation names an API from its OpenAPI title when Name is absent (RestApi,
            # "Name": required only without Body); moto insists on Name.
            resource["Properties"].setdefault(
                "Name", resource["Properties"]["Body"]["info"]["title"]
            )
    outputs = {k: v for k, v in expanded.get("Outputs", {}).items()}
    return dict(_without({**expanded, "Resources": resources, "Outputs": outputs}, gone))


def _condition(template: dict[str, Any], name: str, parameters: dict[str, str]) -> bool:
    def value(node: Any) -> Any:
        if isinstance(node, dict):
            ((function, args),) = node.items()
            if function == "Ref":
                return parameters.get(args, template["Parameters"][args].get("Default", ""))
            if function == "Condition":
                return _condition(template, args, parameters)
            if function == "Fn::Equals":
                return str(value(args[0])) == str(value(args[1]))
            if function == "Fn::Not":
                return not value(args[0])
            if function == "Fn::Or":
                return any(value(a) for a in args)
            if function == "Fn::And":
                return all(value(a) for a in args)
            raise AssertionError(f"condition function {function}")
        return node

    return bool(value(template["Conditions"][name]))


@pytest.fixture(scope="module")
def moto_stack(
    deployed: Path, endpoint: str, anthropic_secret_arn: str
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    parameters = {"AnthropicApiKeySecretArn": anthropic_secret_arn, "AlarmEmail": "ops@example.com"}
    expanded = _expand(deployed, parameters)
    template = _for_moto(expanded)
    key = f"{STACK}/expanded.json"
    _client("s3", endpoint).put_object(Bucket=BUCKET, Key=key, Body=json.dumps(template).encode())
    cloudformation = _client("cloudformation", endpoint)
    cloudformation.create_stack(
        StackName="cache-warming-expanded",
        TemplateURL=f"{endpoint}/{BUCKET}/{key}",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    (stack,) = cloudformation.describe_stacks(StackName="cache-warming-expanded")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    resources = cloudformation.list_stack_resources(StackName="cache-warming-expanded")[
        "StackResourceSummaries"
    ]
    return expanded, resources, parameters


def test_the_sam_expanded_template_creates_every_resource_moto_models(
    moto_stack: tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]],
) -> None:
    from moto.cloudformation.parsing import get_model_map

    expanded, resources, parameters = moto_stack
    modelled = set(get_model_map())
    expected = {
        logical
        for logical, resource in expanded["Resources"].items()
        if resource["Type"] in modelled
        and resource["Type"] not in MOTO_BODYLESS_REST
        and ("Condition" not in resource or _condition(expanded, resource["Condition"], parameters))
    }
    created = {
        r["LogicalResourceId"] for r in resources if r["ResourceStatus"] == "CREATE_COMPLETE"
    }
    assert expected - created == set()
    assert len(expected) >= 25, sorted(expected)
    unmodelled = {r["Type"] for r in expanded["Resources"].values()} - modelled
    assert unmodelled <= MOTO_UNMODELLED, unmodelled - MOTO_UNMODELLED
    operations = (ROOT / "docs" / "operations.md").read_text()
    for resource_type in sorted(MOTO_UNMODELLED):
        assert f"`{resource_type}`" in operations, resource_type


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        if value.keys() == {"Ref"}:
            return {value["Ref"]}
        if value.keys() == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            return {target[0] if isinstance(target, list) else target.split(".")[0]}
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def _created_after(resources: dict[str, Any], logical: str) -> set[str]:
    """Every resource CloudFormation must create before `logical` (DependsOn and references)."""
    seen: set[str] = set()
    todo = [logical]
    while todo:
        resource = resources[todo.pop()]
        depends = resource.get("DependsOn", [])
        direct = {depends} if isinstance(depends, str) else set(depends)
        direct |= _references(resource.get("Properties", {})) & resources.keys()
        todo.extend(direct - seen)
        seen |= direct
    return seen


def _documents_granting(resources: dict[str, Any], name: str, role: str) -> list[dict[str, Any]]:
    """The policy documents resource `name` gives `role`: its inline policies if it is the role,
    the document of a managed or attached policy naming it."""
    resource = resources[name]
    if name == role and resource["Type"] == "AWS::IAM::Role":
        return [policy["PolicyDocument"] for policy in resource["Properties"].get("Policies", [])]
    if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
        return [resource["Properties"]["PolicyDocument"]]
    return []


def test_on_failure_destinations_are_created_after_the_permission_to_send_to_them(
    moto_stack: tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]],
) -> None:
    expanded = moto_stack[0]
    resources = expanded["Resources"]
    configs = {k: v for k, v in resources.items() if v["Type"] == "AWS::Lambda::EventInvokeConfig"}
    assert len(configs) == 2
    for logical, config in configs.items():
        destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        (function,) = _references(config["Properties"]["FunctionName"])
        (role,) = _references(resources[function]["Properties"]["Role"])
        granting = [
            name
            for name in _created_after(resources, logical)
            for document in _documents_granting(resources, name, role)
            if any(
                # .get: a conditional statement (Fn::If) grants no on-failure destination
                statement.get("Action") == "sqs:SendMessage"
                and statement.get("Resource") == destination
                for statement in document["Statement"]
            )
        ]
        assert granting, f"{logical}: no policy granting sqs:SendMessage is created before it"
