"""The deployment: `infra/package.sh` (chalice package + infra/template.yaml + cfn-lint), the merged
template's resources, environment wiring and IAM, `.chalice/config.json`, and `infra/deploy.sh`
against a fake `aws` CLI. Offline: no AWS account, no network.

The package is built once per module, from a copy of the project with an EMPTY requirements.txt:
the template does not depend on the vendored wheels, and this keeps the build offline, fast and
away from the checkout's `.chalice/deployments` cache (xdist workers each build their own copy).
`make package` packages the real requirements.

Template values are checked by resolving the intrinsic functions (Ref, GetAtt, Sub, ...) with fixed
pseudo parameters into the strings the functions would see, then asking a small IAM evaluator
whether the function role allows each call the adapters make with those values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.adapters import store
from chalicelib.adapters.timer import PreciseTimer
from chalicelib.config import ENVIRONMENT_VARIABLES, settings_from
from chalicelib.domain.timing import TIMINGS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FUNCTIONS = (
    "APIHandler",
    "WebsocketConnect",
    "WebsocketMessage",
    "WebsocketDisconnect",
    "Warm",
    "Generate",
)
# Chalice's per-function config keys for the logical ids above.
CONFIG_NAMES = {
    "APIHandler": "api_handler",
    "WebsocketConnect": "websocket_connect",
    "WebsocketMessage": "websocket_message",
    "WebsocketDisconnect": "websocket_disconnect",
    "Warm": "warm",
    "Generate": "generate",
}
# Read by the code but never set by the template: AWS_REGION and AWS_DEFAULT_REGION are set by the
# Lambda runtime (reserved names Lambda refuses); ANTHROPIC_API_KEY (the key is read from Secrets
# Manager), ANTHROPIC_BASE_URL, ANTHROPIC_BEDROCK_BASE_URL and WEBSOCKET_ENDPOINT are for the local
# stack only. JWT_SECRET (a value) is for the local stack only: deployed, JWT_SECRET_ID names the
# secret.
NOT_DEPLOYED = frozenset(
    {
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_BEDROCK_BASE_URL",
        "WEBSOCKET_ENDPOINT",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "JWT_SECRET",
    }
)

# One role per function, each with only what that function's code paths call.
FUNCTION_ROLES = {
    "APIHandler": "ApiRole",
    "WebsocketConnect": "WsConnectRole",
    "WebsocketMessage": "WsMessageRole",
    "WebsocketDisconnect": "WsDisconnectRole",
    "Warm": "WarmRole",
    "Generate": "GenerateRole",
}
# What each function calls beyond its log group and the table (chalicelib/services): `timer` arms
# and cancels warm timers (Scheduler, PassRole, the tick queue), `push` posts to sockets, `invoke`
# starts a turn (only POST .../turns), `jwt` verifies bearer tokens (REST and $connect), `consume`
# is the tick queue's event source mapping and TickBatch, `anthropic` the model (warms, turns),
# and the on-failure destinations (`warm-dlq`, `generate-dlq`).
NEEDS: dict[str, frozenset[str]] = {
    "APIHandler": frozenset({"timer", "push", "invoke", "jwt"}),
    "WebsocketConnect": frozenset({"jwt"}),
    "WebsocketMessage": frozenset({"timer", "push"}),
    "WebsocketDisconnect": frozenset(),
    "Warm": frozenset({"timer", "push", "consume", "anthropic", "warm-dlq"}),
    "Generate": frozenset({"timer", "push", "anthropic", "generate-dlq"}),
}
XRAY_WRITES = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "cw-test"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cache-warming/anthropic-AbCdEf"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0000",
}
NOW_MS = 1_800_000_000_000


# --- build once ------------------------------------------------------------------------------


class Packaged:
    def __init__(self, out_dir: Path, run: subprocess.CompletedProcess[str], seconds: float):
        self.out_dir = out_dir
        self.run = run
        self.seconds = seconds
        self.path = out_dir / "sam.yaml"
        self.text = self.path.read_text() if self.path.exists() else ""
        self.template: dict[str, Any] = yaml.safe_load(self.text) if self.text else {}


def _copy_project(destination: Path) -> None:
    shutil.copy2(ROOT / "app.py", destination / "app.py")
    shutil.copytree(
        ROOT / "chalicelib",
        destination / "chalicelib",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (destination / ".chalice").mkdir()
    shutil.copy2(ROOT / ".chalice" / "config.json", destination / ".chalice" / "config.json")
    (destination / "requirements.txt").write_text("")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    work = tmp_path_factory.mktemp("infra-package")
    project = work / "project"
    project.mkdir()
    _copy_project(project)
    out_dir = work / "out"
    # cfn-lint runs in its own test (below); make package runs both.
    env = {
        **os.environ,
        "PROJECT_DIR": str(project),
        "OUT_DIR": str(out_dir),
        "BIN": str(BIN),
        "SKIP_LINT": "1",
    }
    started = time.monotonic()
    run = subprocess.run(
        ["bash", str(ROOT / "infra" / "package.sh"), "dev"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Packaged(out_dir, run, time.monotonic() - started)


@pytest.fixture(scope="module")
def template(packaged: Packaged) -> dict[str, Any]:
    if not packaged.template:
        pytest.fail(f"package.sh wrote no template:\n{packaged.run.stdout}\n{packaged.run.stderr}")
    return packaged.template


@pytest.fixture(scope="module")
def resolver(template: dict[str, Any]) -> Resolver:
    return Resolver(template, {"AnthropicApiKeySecretArn": SECRET_ARN})


# --- a small CloudFormation resolver ---------------------------------------------------------


class Resolver:
    """Evaluates intrinsic functions to the strings CloudFormation would produce, with made-up
    physical ids: `<stack>-<LogicalId>-GEN` unless the template names the resource."""

    NO_VALUE = object()

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
        self.template = template
        self.resources: Mapping[str, Any] = template["Resources"]
        self.parameters = {
            name: spec.get("Default") for name, spec in (template.get("Parameters") or {}).items()
        }
        self.parameters.update(parameters)
        missing = [name for name, value in self.parameters.items() if value is None]
        assert not missing, f"parameters without a value: {missing}"

    # physical names and attributes

    def _type(self, logical: str) -> str:
        assert logical in self.resources, f"no resource {logical}"
        return str(self.resources[logical]["Type"])

    def _named(self, logical: str, prop: str) -> str:
        value = self.resources[logical].get("Properties", {}).get(prop)
        return str(self.resolve(value)) if value is not None else f"{STACK}-{logical}-GEN"

    def name(self, logical: str) -> str:
        kind = self._type(logical)
        prop = {
            "AWS::Serverless::Function": "FunctionName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Scheduler::ScheduleGroup": "Name",
            "AWS::IAM::Role": "RoleName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::SecretsManager::Secret": "Name",
            "AWS::Logs::LogGroup": "LogGroupName",
        }.get(kind, "")
        return self._named(logical, prop)

    def ref(self, logical: str) -> str:
        if logical in PSEUDO:
            return PSEUDO[logical]
        if logical in self.parameters:
            return str(self.parameters[logical])
        kind = self._type(logical)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name(logical)}"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{self.name(logical)}-XyZ123"
        if kind.startswith("AWS::ApiGateway"):
            return logical.lower()[:10]
        return self.name(logical)

    def getatt(self, logical: str, attribute: str) -> str:
        kind = self._type(logical)
        name = self.name(logical)
        arns = {
            "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::Scheduler::ScheduleGroup": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return name
        raise AssertionError(f"the resolver does not know {logical}.{attribute} ({kind})")

    # intrinsic functions

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token:
                logical, attribute = token.split(".", 1)
                return self.getatt(logical, attribute)
            return self.ref(token)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not self.NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
            if key == "Fn::GetAtt":
                logical, attribute = (
                    argument.split(".", 1) if isinstance(argument, str) else argument
                )
                return self.getatt(logical, attribute)
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    return self._sub(argument, {})
                return self._sub(argument[0], argument[1])
            if key == "Fn::Join":
                return str(argument[0]).join(str(self.resolve(part)) for part in argument[1])
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(part) for part in argument)
                return left == right
            if key == "Fn::Or":
                return any(self.resolve(part) for part in argument)
            if key == "Fn::And":
                return all(self.resolve(part) for part in argument)
            if key == "Fn::Not":
                return not self.resolve(argument[0])
            if key == "Condition":
                return self.condition(argument)
            assert not key.startswith("Fn::"), f"the resolver does not know {key}"
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not self.NO_VALUE}

    # conveniences

    def env(self, function: str) -> dict[str, str]:
        variables = self.resources[function]["Properties"]["Environment"]["Variables"]
        return {name: str(value) for name, value in self.resolve(variables).items()}

    def output(self, name: str) -> str:
        return str(self.resolve(self.template["Outputs"][name]["Value"]))


# --- a small IAM evaluator -------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                return False
            patterns = [str(item) for item in _as_list(expected)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in patterns
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatchcase(actual, pattern) for pattern in patterns)
            else:
                raise AssertionError(f"the evaluator does not know {operator}")
            if not ok:
                return False
    return True


def allowed(
    statements: list[dict[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """Identity-policy check: some Allow statement matches (no Deny statements are used here)."""
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        actions = [str(item).lower() for item in _as_list(statement["Action"])]
        if not any(fnmatchcase(action.lower(), pattern) for pattern in actions):
            continue
        if not any(fnmatchcase(resource, str(item)) for item in _as_list(statement["Resource"])):
            continue
        if _condition_holds(statement.get("Condition", {}), context or {}):
            return True
    return False


def role_of(template: Mapping[str, Any], function: str) -> str:
    role = template["Resources"][function]["Properties"]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function} has no managed role"
    return str(role["Fn::GetAtt"][0])


def role_statements(resolver: Resolver, role: str) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies and of the AWS::IAM::Policy attached to it."""
    # Resolved first: a policy or statement may exist only under a condition (Fn::If).
    policies = resolver.resolve(resolver.resources[role].get("Properties", {}).get("Policies", []))
    documents = [policy["PolicyDocument"] for policy in policies]
    assert not resolver.resources[role]["Properties"].get("ManagedPolicyArns")
    for resource in resolver.resources.values():
        if (
            resource["Type"] == "AWS::IAM::Policy"
            and {"Ref": role} in resource["Properties"]["Roles"]
        ):
            documents.append(resource["Properties"]["PolicyDocument"])
    return [
        statement for document in documents for statement in resolver.resolve(document)["Statement"]
    ]


def function_statements(resolver: Resolver, function: str) -> list[dict[str, Any]]:
    return role_statements(resolver, role_of(resolver.template, function))


def all_policy_documents(resolver: Resolver) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document of the template, resolved under the resolver's parameters."""
    for logical, resource in resolver.template["Resources"].items():
        properties = resolver.resolve(resource.get("Properties", {}))
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield logical, policy["PolicyDocument"]
        elif resource["Type"] in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::SQS::QueuePolicy",
            "AWS::SNS::TopicPolicy",
        ):
            yield logical, properties["PolicyDocument"]
        elif resource["Type"] == "AWS::Serverless::Function":
            assert "Policies" not in properties, f"{logical}: SAM policies bypass FunctionPolicy"


# --- the package -----------------------------------------------------------------------------


def test_package_builds(packaged: Packaged) -> None:
    assert packaged.run.returncode == 0, packaged.run.stdout + packaged.run.stderr
    assert (packaged.out_dir / "deployment.zip").stat().st_size > 0
    assert packaged.template["Resources"], "empty template"
    # CloudFormation refuses YAML aliases; Chalice's writer emits them unless package.sh expands them.
    assert not re.search(r"[&*]id\d{3}", packaged.text)
    assert packaged.seconds < 60


def test_every_module_ships_with_bytecode_lambda_can_use_as_is(packaged: Packaged) -> None:
    # /var/task is read-only: without a pyc in the package every cold start compiles every
    # module it imports (scripts/precompile.py).
    import importlib.util
    import marshal
    import zipfile

    with zipfile.ZipFile(packaged.out_dir / "deployment.zip") as package:
        names = set(package.namelist())
        sources = [n for n in names if n.endswith(".py")]
        missing = [s for s in sources if importlib.util.cache_from_source(s) not in names]
        assert {"app.py", "chalice/app.py", "chalicelib/bootstrap.py"} <= set(sources)
        assert missing == []
        pyc = package.read(importlib.util.cache_from_source("chalicelib/bootstrap.py"))
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    # PEP 552 flags: bit 0 hash-based, bit 1 check_source; unchecked-hash is 0b01.
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    code = marshal.loads(pyc[16:])
    assert code.co_filename == "/var/task/chalicelib/bootstrap.py"


def test_precompiling_refuses_a_runtime_other_than_the_packaging_python(tmp_path: Path) -> None:
    from scripts import precompile

    template = tmp_path / "sam.yaml"
    template.write_text(
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {Runtime: python3.9}\n"
    )
    assert precompile.main([str(tmp_path / "deployment.zip"), str(template)]) == 1
    assert not (tmp_path / "deployment.zip").exists()


def test_cfn_lint_is_clean(packaged: Packaged) -> None:
    lint = subprocess.run(
        [str(BIN / "cfn-lint"), "--", str(packaged.path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == ""


def test_functions_use_a_supported_runtime_and_arm64(template: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        properties = template["Resources"][function]["Properties"]
        assert template["Resources"][function]["Type"] == "AWS::Serverless::Function"
        assert properties["Runtime"] in ("python3.11", "python3.12"), function
        assert properties["Architectures"] == ["arm64"], function


# --- resources -------------------------------------------------------------------------------


def test_table_matches_the_store(template: dict[str, Any]) -> None:
    table = template["Resources"]["Table"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": store.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    by_owner, summaries = properties["GlobalSecondaryIndexes"]
    keys = [
        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
    ]
    assert (by_owner["IndexName"], by_owner["KeySchema"]) == (store.GSI_NAME, keys)
    assert by_owner["Projection"] == {"ProjectionType": "ALL"}
    # The list view's index carries the summary, never the body.
    assert (summaries["IndexName"], summaries["KeySchema"]) == (store.SUMMARY_GSI, keys)
    assert summaries["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["summary"],
    }


def test_scheduler_group_role_and_dead_letter_queue(
    template: dict[str, Any], resolver: Resolver
) -> None:
    resources = template["Resources"]
    assert resources["ScheduleGroup"]["Type"] == "AWS::Scheduler::ScheduleGroup"
    assert resources["WarmDLQ"]["Type"] == "AWS::SQS::Queue"
    assert not resources["WarmDLQ"]["Properties"].get("FifoQueue"), (
        "Scheduler needs a standard queue"
    )

    role = resources["SchedulerRole"]
    assert role["Type"] == "AWS::IAM::Role"
    trust = resolver.resolve(role["Properties"]["AssumeRolePolicyDocument"])["Statement"]
    assume = [dict(statement, Resource="*") for statement in trust]
    service = {"aws:SourceAccount": ACCOUNT}
    for statement in assume:
        assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert allowed(assume, "sts:AssumeRole", "*", service)
    assert not allowed(assume, "sts:AssumeRole", "*", {"aws:SourceAccount": "999999999999"})
    assert not allowed(assume, "sts:AssumeRole", "*", {})

    # The execution role may send a tick to the tick queue (and dead-letter one); it may still
    # invoke the warm function, for schedules booked before the queue existed, and nothing else.
    statements = role_statements(resolver, "SchedulerRole")
    invocable = {
        function
        for function in FUNCTIONS
        if allowed(statements, "lambda:InvokeFunction", resolver.getatt(function, "Arn"))
    }
    assert invocable == {"Warm"}
    assert allowed(statements, "sqs:SendMessage", resolver.getatt("TickQueue", "Arn"))
    assert allowed(statements, "sqs:SendMessage", resolver.getatt("WarmDLQ", "Arn"))
    assert not allowed(statements, "sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:other")
    granted = {str(action) for s in statements for action in _as_list(s["Action"])}
    assert granted == {"lambda:InvokeFunction", "sqs:SendMessage"}


def test_the_tick_queue_feeds_the_warm_function(
    template: dict[str, Any], resolver: Resolver
) -> None:
    resources = template["Resources"]
    queue = resources["TickQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    properties = resolver.resolve(queue["Properties"])
    # Standard queue: FIFO queues have no per-message DelaySeconds.
    assert not properties.get("FifoQueue")
    # Six times the function timeout (Lambda's recommendation for an SQS event source).
    warm_timeout = resources["Warm"]["Properties"]["Timeout"]
    assert properties["VisibilityTimeout"] == 6 * warm_timeout == TIMINGS.warm_visibility_s
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": resolver.getatt("WarmDLQ", "Arn"),
        "maxReceiveCount": 5,
    }
    # Long enough that ticks outlive an outage of the consumer; a replayed stale tick is a no-op.
    assert properties["MessageRetentionPeriod"] >= 24 * 3600

    mapping = resources["TickEventSourceMapping"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    # The role may poll before Lambda checks: the grant is inline in WarmRole, which the
    # function (FunctionName: !Ref Warm) is created after.
    assert "DependsOn" not in mapping
    assert mapping["Properties"]["FunctionName"] == {"Ref": "Warm"}
    assert resources["Warm"]["Properties"]["Role"] == {"Fn::GetAtt": ["WarmRole", "Arn"]}
    esm = resolver.resolve(mapping["Properties"])
    assert esm["EventSourceArn"] == resolver.getatt("TickQueue", "Arn")
    assert esm["FunctionName"] == resolver.ref("Warm")
    assert esm["BatchSize"] == 10 and esm["MaximumBatchingWindowInSeconds"] == 0
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # The mapping never starts more than the function's reserved concurrency lets run.
    reserved = resolver.resolve(resources["Warm"]["Properties"]["ReservedConcurrentExecutions"])
    assert esm["ScalingConfig"] == {"MaximumConcurrency": reserved} and esm["Enabled"] is True
    assert template["Parameters"]["WarmReservedConcurrency"]["MaxValue"] == 1000
    for ceiling, enabled, maximum in (("0", False, 2), ("1", True, 2), ("700", True, "700")):
        other = Resolver(
            template, {"AnthropicApiKeySecretArn": SECRET_ARN, "WarmReservedConcurrency": ceiling}
        )
        scaled = other.resolve(mapping["Properties"])
        assert (scaled["Enabled"], scaled["ScalingConfig"]["MaximumConcurrency"]) == (
            enabled,
            maximum,
        ), ceiling


def test_the_tick_queue_age_alarm(template: dict[str, Any], resolver: Resolver) -> None:
    properties = template["Resources"]["TickQueueAgeAlarm"]["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
    )
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["TickQueue", "QueueName"]}}
    ]
    # Above the longest delay a tick can have (900 s), so a delayed tick never sets it off.
    assert properties["Threshold"] > 900
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"
    with_topic = Resolver(
        template, {"AnthropicApiKeySecretArn": SECRET_ARN, "AlarmTopicArn": topic}
    )
    assert with_topic.resolve(properties)["AlarmActions"] == [topic]


def test_dead_letter_queue_depth_alarm(template: dict[str, Any], resolver: Resolver) -> None:
    alarm = template["Resources"]["WarmDLQDepthAlarm"]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    properties = alarm["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["WarmDLQ", "QueueName"]}}
    ]
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == 0
    # The stack's own topic by default; the AlarmTopicArn parameter replaces it.
    assert resolver.resolve(properties)["AlarmActions"] == [resolver.ref("AlarmTopic")]
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"
    with_topic = Resolver(
        template, {"AnthropicApiKeySecretArn": SECRET_ARN, "AlarmTopicArn": topic}
    )
    assert with_topic.resolve(properties)["AlarmActions"] == [topic]


def test_failed_warm_invocations_go_to_the_dead_letter_queue(
    template: dict[str, Any], resolver: Resolver
) -> None:
    config = resolver.resolve(template["Resources"]["Warm"]["Properties"]["EventInvokeConfig"])
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": resolver.getatt("WarmDLQ", "Arn"),
    }
    assert config["MaximumEventAgeInSeconds"] <= 300


def test_the_anthropic_key_is_a_secrets_manager_reference(
    packaged: Packaged, template: dict[str, Any], resolver: Resolver
) -> None:
    parameter = template["Parameters"]["AnthropicApiKeySecretArn"]
    # Empty by default (Bedrock needs none); with Anthropic the deployer must name the secret.
    assert parameter["Default"] == ""
    rule = template["Rules"]["AnthropicProviderNamesItsKey"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "ModelProvider"}, "anthropic"]}
    assert [a["Assert"] for a in rule["Assertions"]] == [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "AnthropicApiKeySecretArn"}, ""]}]}
    ]
    assert re.match(parameter["AllowedPattern"], SECRET_ARN)
    assert not re.match(parameter["AllowedPattern"], "sk-ant-api03-plaintext")
    assert "sk-ant" not in packaged.text
    for function in FUNCTIONS:
        assert resolver.env(function)["ANTHROPIC_API_KEY_SECRET_ID"] == SECRET_ARN
    # The JWT signing key is generated by Secrets Manager and handed over by dynamic reference.
    secret = template["Resources"]["JwtSigningSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "SecretString" not in secret["Properties"]
    assert "GenerateSecretString" in secret["Properties"]
    # No secret VALUE in any environment: no dynamic reference, nothing but ARNs and settings.
    for function in FUNCTIONS:
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert "{{resolve:" not in json.dumps(variables), function
        assert "JWT_SECRET" not in variables


# --- environment -----------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_variable_the_code_reads_is_set(template: dict[str, Any], function: str) -> None:
    variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    expected = set(ENVIRONMENT_VARIABLES) - NOT_DEPLOYED
    assert sorted(expected - variables.keys()) == []
    assert sorted(NOT_DEPLOYED & variables.keys()) == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_variables_point_at_this_stacks_resources(
    template: dict[str, Any], resolver: Resolver, function: str
) -> None:
    env = resolver.env(function)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert env["TABLE_NAME"] == resolver.ref("Table")
    assert env["SCHEDULE_GROUP"] == resolver.ref("ScheduleGroup")
    assert env["SCHEDULER_ROLE_ARN"] == resolver.getatt("SchedulerRole", "Arn")
    assert env["TICK_QUEUE_URL"] == resolver.ref("TickQueue")
    assert env["TICK_QUEUE_ARN"] == resolver.getatt("TickQueue", "Arn")
    assert env["GENERATE_FUNCTION_ARN"] == resolver.getatt("Generate", "Arn")
    assert env["WARM_DLQ_ARN"] == resolver.getatt("WarmDLQ", "Arn")
    assert env["WEBSOCKET_API_ID"] == resolver.ref("WebsocketAPI")
    stage = template["Resources"]["WebsocketAPIStage"]["Properties"]["StageName"]
    assert env["WEBSOCKET_STAGE"] == stage
    assert {s["websocket_api_stage"] for s in config["stages"].values()} == {stage}
    assert env["JWT_SECRET_ID"] == resolver.ref("JwtSigningSecret")
    for name in ("DEFAULT_MODEL", "DEFAULT_MAX_TOKENS", "DEFAULT_SYSTEM_PROMPT"):
        assert env[name] == config["environment_variables"][name]
    settings = settings_from({**env, "AWS_REGION": REGION})
    assert settings.management_api_url == (
        f"https://{resolver.ref('WebsocketAPI')}.execute-api.{REGION}.amazonaws.com/{stage}"
    )


def test_outputs_name_the_same_resources(resolver: Resolver) -> None:
    env = resolver.env("Warm")
    assert resolver.output("WarmFunctionArn") == resolver.getatt("Warm", "Arn")
    assert resolver.output("TickQueueArn") == env["TICK_QUEUE_ARN"]
    assert resolver.output("TickQueueUrl") == env["TICK_QUEUE_URL"]
    assert resolver.output("GenerateFunctionArn") == env["GENERATE_FUNCTION_ARN"]
    assert resolver.output("SchedulerRoleArn") == env["SCHEDULER_ROLE_ARN"]
    assert resolver.output("WarmDLQArn") == env["WARM_DLQ_ARN"]
    assert resolver.output("TableName") == env["TABLE_NAME"]
    assert resolver.output("ScheduleGroupName") == env["SCHEDULE_GROUP"]
    assert resolver.output("WebsocketConnectEndpointURL").startswith("wss://")
    assert resolver.output("EndpointURL").startswith("https://")


# --- IAM -------------------------------------------------------------------------------------


def test_no_statement_grants_every_resource(template: dict[str, Any], resolver: Resolver) -> None:
    assert_no_statement_grants_every_resource(resolver)


def _any_region_model_through_a_profile(statement: Mapping[str, Any], arn: str) -> bool:
    """A Bedrock foundation model in any Region, granted only through named inference profiles:
    a profile's destination Regions are AWS's to change (scripts/bedrock_iam.py)."""
    profiles = statement.get("Condition", {}).get("StringEquals", {})
    return (
        arn.startswith("arn:aws:bedrock:*::foundation-model/")
        and "*" not in arn.split("/", 1)[1]
        and bool(profiles.get("bedrock:InferenceProfileArn"))
    )


def assert_no_statement_grants_every_resource(resolver: Resolver) -> None:
    template = resolver.template
    documents = list(all_policy_documents(resolver))
    assert {logical for logical, _ in documents} >= {*FUNCTION_ROLES.values(), "SchedulerRole"}
    for logical, document in documents:
        for statement in document["Statement"]:
            for action in _as_list(statement["Action"]):
                assert action != "*" and not str(action).endswith(":*"), (logical, action)
            resource = statement.get("Resource")
            assert resource is not None, (logical, statement)
            if set(_as_list(statement["Action"])) <= XRAY_WRITES:
                assert resource == "*"  # X-Ray grants these on "*" only
                continue
            for arn in _as_list(resource):
                assert arn != "*", (logical, statement)
                if _any_region_model_through_a_profile(statement, str(arn)):
                    continue
                parts = str(arn).split(":")
                assert parts[0] == "arn" and "*" not in parts[1:5], (logical, arn)
    # Chalice generates no role of its own (manage_iam_role: false), so no autogen grants.
    assert "DefaultRole" not in template["Resources"]


def test_each_function_has_its_own_role_trusted_by_lambda_only(template: dict[str, Any]) -> None:
    assert {f: role_of(template, f) for f in FUNCTIONS} == FUNCTION_ROLES
    for role in FUNCTION_ROLES.values():
        properties = template["Resources"][role]["Properties"]
        (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert "ManagedPolicyArns" not in properties
    # Nothing else grants the function roles anything.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            refs = {ref["Ref"] for ref in resource["Properties"]["Roles"]}
            assert not refs & set(FUNCTION_ROLES.values())


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_is_traced(template: dict[str, Any], function: str) -> None:
    assert template["Resources"][function]["Properties"]["Tracing"] == "Active"
    mine = role_statements(
        Resolver(template, {"AnthropicApiKeySecretArn": SECRET_ARN}), role_of(template, function)
    )
    assert allowed(mine, "xray:PutTraceSegments", "*")
    assert template["Resources"]["RestAPI"]["Properties"]["TracingEnabled"] is True


@pytest.mark.parametrize("function", sorted(f for f, needs in NEEDS.items() if "timer" in needs))
def test_the_timers_ticks_resolve_to_template_resources(resolver: Resolver, function: str) -> None:
    """Build the timer the way bootstrap does, from the function's resolved environment, and check
    every ARN it hands SQS and Scheduler against the template and the IAM that must allow it."""
    settings = settings_from({**resolver.env(function), "AWS_REGION": REGION})
    created: list[dict[str, Any]] = []
    deleted: list[dict[str, Any]] = []
    sent: list[tuple[dict[str, Any], int]] = []

    class RecordingScheduler:
        def create_schedule(self, **kwargs: Any) -> dict[str, Any]:
            created.append(kwargs)
            return {"ScheduleArn": "x"}

        def delete_schedule(self, **kwargs: Any) -> dict[str, Any]:
            deleted.append(kwargs)
            return {}

    class RecordingQueue:
        def send(self, payload: dict[str, Any], delay_s: int) -> None:
            sent.append((payload, delay_s))

        def send_with_backup(self, payload: dict[str, Any], delay_s: int, backup: int) -> None:
            sent.append((payload, delay_s))

        def retry_later(self, receipt: str, delay_s: int) -> None:
            raise AssertionError("not used by the timer")

    timer = PreciseTimer(
        RecordingScheduler,  # type: ignore[arg-type]
        RecordingQueue(),
        group=settings.schedule_group,
        queue_arn=settings.tick_queue_arn,
        role_arn=settings.scheduler_role_arn,
        dead_letter_arn=settings.warm_dlq_arn,
    )
    name = timer.arm("conv-1", 7, NOW_MS + 3_000_000, NOW_MS)  # 50 min away: Scheduler
    assert name is not None
    timer.cancel(name)
    assert timer.arm("conv-1", 8, NOW_MS + 240_500, NOW_MS) is None  # within 900 s: the queue
    assert sent == [({"conversationId": "conv-1", "seq": 8, "target": NOW_MS + 240_500}, 240)]

    (schedule,) = created
    target = schedule["Target"]
    assert (
        schedule["GroupName"]
        == resolver.ref("ScheduleGroup")
        == resolver.output("ScheduleGroupName")
    )
    assert target["Arn"] == resolver.getatt("TickQueue", "Arn") == resolver.output("TickQueueArn")
    assert target["RoleArn"] == resolver.getatt("SchedulerRole", "Arn")
    assert target["RoleArn"] == resolver.output("SchedulerRoleArn")
    assert target["DeadLetterConfig"]["Arn"] == resolver.getatt("WarmDLQ", "Arn")
    assert target["DeadLetterConfig"]["Arn"] == resolver.output("WarmDLQArn")

    mine = function_statements(resolver, function)
    schedule_arn = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{schedule['GroupName']}/{name}"
    assert allowed(mine, "scheduler:CreateSchedule", schedule_arn)
    assert allowed(mine, "scheduler:GetSchedule", schedule_arn)
    assert [d["GroupName"] for d in deleted] == [schedule["GroupName"]]
    assert allowed(mine, "scheduler:DeleteSchedule", schedule_arn)
    other_group = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{name}"
    assert not allowed(mine, "scheduler:CreateSchedule", other_group)
    to_scheduler = {"iam:PassedToService": "scheduler.amazonaws.com"}
    assert allowed(mine, "iam:PassRole", target["RoleArn"], to_scheduler)
    assert not allowed(
        mine, "iam:PassRole", target["RoleArn"], {"iam:PassedToService": "ec2.amazonaws.com"}
    )
    assert allowed(mine, "sqs:SendMessage", settings.tick_queue_arn)
    assert resolver.ref("TickQueue") == settings.tick_queue_url

    scheduler = role_statements(resolver, "SchedulerRole")
    assert allowed(scheduler, "sqs:SendMessage", target["Arn"])
    assert allowed(scheduler, "sqs:SendMessage", target["DeadLetterConfig"]["Arn"])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_function_role_allows_what_the_adapters_call(
    template: dict[str, Any], resolver: Resolver, function: str
) -> None:
    settings = settings_from({**resolver.env(function), "AWS_REGION": REGION})
    mine = function_statements(resolver, function)
    needs = NEEDS[function]

    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{settings.table_name}"
    for action in (
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "ConditionCheckItem",
        "BatchWriteItem",
        "Query",
    ):
        assert allowed(mine, f"dynamodb:{action}", table), action
    assert allowed(mine, "dynamodb:Query", f"{table}/index/{store.GSI_NAME}")
    for action in ("Scan", "DeleteTable", "UpdateTable", "CreateTable"):
        assert not allowed(mine, f"dynamodb:{action}", table), action
    other_table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/someone-else"
    assert not allowed(mine, "dynamodb:GetItem", other_table)

    match = re.fullmatch(
        r"https://([^.]+)\.execute-api\.([^.]+)\.amazonaws\.com/([^/]+)",
        settings.management_api_url,
    )
    assert match, settings.management_api_url
    api, region, stage = match.groups()
    for method in ("POST", "GET", "DELETE"):
        connection = (
            f"arn:aws:execute-api:{region}:{ACCOUNT}:{api}/{stage}/{method}/@connections/Abc="
        )
        assert allowed(mine, "execute-api:ManageConnections", connection) == ("push" in needs)
    other_api = f"arn:aws:execute-api:{region}:{ACCOUNT}:otherapi/{stage}/POST/@connections/Abc="
    assert not allowed(mine, "execute-api:ManageConnections", other_api)

    invoke = allowed(mine, "lambda:InvokeFunction", settings.generate_function_arn)
    assert invoke == ("invoke" in needs)
    # Ticks go through the queue: no function invokes the warm function any more.
    for other in FUNCTIONS:
        if other != "Generate":
            assert not allowed(mine, "lambda:InvokeFunction", resolver.getatt(other, "Arn"))
    assert allowed(mine, "sqs:SendMessage", settings.tick_queue_arn) == ("timer" in needs)
    schedules = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{settings.schedule_group}/x"
    assert allowed(mine, "scheduler:CreateSchedule", schedules) == ("timer" in needs)
    for action in (
        "ReceiveMessage",
        "DeleteMessage",
        "GetQueueAttributes",
        "ChangeMessageVisibility",
    ):
        assert allowed(mine, f"sqs:{action}", settings.tick_queue_arn) == ("consume" in needs)
    for action in ("SendMessage", "ReceiveMessage"):
        assert not allowed(mine, f"sqs:{action}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:other")
    assert not allowed(mine, "sqs:ReceiveMessage", settings.warm_dlq_arn)
    assert allowed(mine, "sqs:SendMessage", settings.warm_dlq_arn) == ("warm-dlq" in needs)
    generate_dlq = resolver.getatt("GenerateDLQ", "Arn")
    assert allowed(mine, "sqs:SendMessage", generate_dlq) == ("generate-dlq" in needs)

    anthropic = allowed(mine, "secretsmanager:GetSecretValue", settings.anthropic_api_key_secret_id)
    assert anthropic == ("anthropic" in needs)
    jwt = allowed(mine, "secretsmanager:GetSecretValue", settings.jwt_secret_id)
    assert jwt == ("jwt" in needs)
    assert settings.jwt_secret_id == resolver.ref("JwtSigningSecret")

    for logical in FUNCTIONS:
        log_group = resolver.name(f"{_log_group_id(template, logical)}")
        stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}:log-stream:2026/01/01/x"
        assert allowed(mine, "logs:PutLogEvents", stream) == (logical == function), log_group
        assert allowed(mine, "logs:CreateLogStream", stream) == (logical == function), log_group
    foreign = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other:log-stream:x"
    assert not allowed(mine, "logs:PutLogEvents", foreign)


def _log_group_id(template: Mapping[str, Any], function: str) -> str:
    """The LogGroup resource whose name refers to the function (Chalice names the REST handler's
    `ApiHandlerLogGroup`)."""
    found = [
        logical
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Logs::LogGroup"
        and resource["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
    ]
    assert len(found) == 1, (function, found)
    return str(found[0])


# --- configuration ---------------------------------------------------------------------------


# The warm function's timeout is the one domain/timing.py sizes its claims and the queue's
# visibility on.
EXPECTED_TIMEOUTS = {"Warm": (TIMINGS.warm_timeout_s,) * 2, "Generate": (900, 900)}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_chalice_config_stages(stage: str) -> None:
    from chalice.cli.factory import CLIFactory

    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=stage)
    assert config.lambda_python_version in ("python3.11", "python3.12")
    assert config.environment_variables["TABLE_NAME"]
    assert config.environment_variables["SCHEDULE_GROUP"]
    for logical, name in CONFIG_NAMES.items():
        scoped = config.scope(stage, name)
        low, high = EXPECTED_TIMEOUTS.get(logical, (10, 29))
        assert low <= scoped.lambda_timeout <= high, (logical, scoped.lambda_timeout)
        assert scoped.lambda_memory_size >= 256, logical
        assert scoped.log_retention_in_days > 0, logical
        assert scoped.lambda_architecture == "arm64"


def test_config_json_pins_the_code_defaults() -> None:
    """`.chalice/config.json` sets the model defaults for every stage (and `chalice local`); they must
    not silently diverge from `chalicelib/config.py`'s own defaults."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    variables = config["environment_variables"]
    defaults = settings_from({})
    assert variables["DEFAULT_MODEL"] == defaults.default_model
    assert int(variables["DEFAULT_MAX_TOKENS"]) == defaults.default_max_tokens
    assert variables["DEFAULT_SYSTEM_PROMPT"] == defaults.default_system_prompt
    assert variables["WEBSOCKET_STAGE"] == defaults.websocket_stage


def test_template_carries_the_dev_config(template: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        timeout = template["Resources"][function]["Properties"]["Timeout"]
        low, high = EXPECTED_TIMEOUTS.get(function, (10, 29))
        assert low <= timeout <= high, (function, timeout)
        log_group = template["Resources"][_log_group_id(template, function)]
        assert log_group["Properties"]["RetentionInDays"] > 0


def test_chalice_test_client_still_loads_the_config() -> None:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        assert client.http.get("/health").status_code == 200


def test_make_targets_call_the_scripts() -> None:
    for target, script in (
        ("package", "infra/package.sh prod"),
        ("deploy", "infra/deploy.sh prod"),
    ):
        dry = subprocess.run(
            ["make", "-n", target, "STAGE=prod"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert dry.returncode == 0, dry.stderr
        assert script in dry.stdout
    requirements = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "cfn-lint==1.58.0" in requirements


def test_the_checks_make_checkov_skips_are_the_ones_security_md_accepts() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (accepted,) = re.findall(r"^CHECKOV_ACCEPTED := (.+)$", makefile, re.MULTILINE)
    security = (ROOT / "docs" / "security.md").read_text()
    section = security[security.index("## checkov") :]
    listed = set(re.findall(r"^\| `(CKV_AWS_\d+)`", section, re.MULTILINE))
    assert set(accepted.split(",")) == listed
    assert "checkov==3.3.30" in (ROOT / "requirements-checkov.txt").read_text().splitlines()


# --- moto: the non-Lambda resources come up --------------------------------------------------


def test_state_resources_deploy_in_moto(template: dict[str, Any], aws: Any) -> None:
    wanted = ("Table", "WarmDLQ", "TickQueue", "SchedulerRole")
    stack = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {logical: template["Resources"][logical] for logical in wanted},
    }
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(stack))
    (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    physical = {
        item["LogicalResourceId"]: item["PhysicalResourceId"]
        for item in cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
    }
    assert set(physical) == set(wanted)

    dynamodb = aws.client("dynamodb")
    store.create_table(dynamodb, "reference")
    ours = dynamodb.describe_table(TableName=physical["Table"])["Table"]
    reference = dynamodb.describe_table(TableName="reference")["Table"]

    def shape(table: dict[str, Any]) -> Any:
        return (
            table["KeySchema"],
            sorted(table["AttributeDefinitions"], key=lambda item: item["AttributeName"]),
            [
                (index["IndexName"], index["KeySchema"], index["Projection"])
                for index in table["GlobalSecondaryIndexes"]
            ],
            table["BillingModeSummary"]["BillingMode"],
        )

    assert shape(ours) == shape(reference)

    sqs = aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=physical["WarmDLQ"], AttributeNames=["All"])
    assert "FifoQueue" not in attributes["Attributes"]
    ticks = sqs.get_queue_attributes(QueueUrl=physical["TickQueue"], AttributeNames=["All"])
    redrive = json.loads(ticks["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == attributes["Attributes"]["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5
    assert "FifoQueue" not in ticks["Attributes"]
    role = aws.client("iam").get_role(RoleName=physical["SchedulerRole"])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    assert trust["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}


# --- deploy.sh against a fake aws CLI ----------------------------------------------------------


FAKE_AWS = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$AWS_LOG"
case "$1 $2" in
  "configure get") echo us-east-1 ;;
  "sts get-caller-identity") echo 123456789012 ;;
  "s3api head-bucket") exit 0 ;;
  "lambda get-account-settings") printf '%s\t%s\n' "${QUOTA:-1000}" "${UNRESERVED:-1000}" ;;
  "lambda get-function-concurrency") echo "Function not found" >&2; exit 254 ;;
  "cloudformation describe-stacks")
    case "$*" in
      *WebsocketConnectEndpointURL*) echo "wss://ws.example/api/" ;;
      *EndpointURL*) echo "https://rest.example/api/" ;;
      *) [[ -n "${STACK_EXISTS:-}" ]] || { echo "Stack does not exist" >&2; exit 254; } ;;
    esac ;;
  "cloudformation package")
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --template-file) src="$2"; shift ;;
        --output-template-file) dst="$2"; shift ;;
      esac
      shift
    done
    cp "$src" "$dst" ;;
  "cloudformation deploy") exit 0 ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def fake_aws(tmp_path: Path, packaged: Packaged) -> dict[str, str]:
    cli = tmp_path / "aws"
    cli.write_text(FAKE_AWS)
    cli.chmod(0o755)
    out_dir = tmp_path / "build" / "dev"
    out_dir.mkdir(parents=True)
    shutil.copy2(packaged.path, out_dir / "sam.yaml")
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "ANTHROPIC_API_KEY_SECRET_ARN",
            "ALARM_TOPIC_ARN",
            "ARTIFACT_BUCKET",
            "MODEL_PROVIDER",
            "BEDROCK_SCOPE",
            "ALARM_EMAIL",
        )
        and not key.startswith("JWT_")
    }
    env.update(
        AWS_CLI=str(cli), AWS_LOG=str(tmp_path / "aws.log"), OUT_DIR=str(out_dir), AWS_REGION=REGION
    )
    return env


def _deploy(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "infra" / "deploy.sh"), "dev"],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_deploy_script_packages_deploys_and_prints_urls(fake_aws: dict[str, str]) -> None:
    run = _deploy({**fake_aws, "ANTHROPIC_API_KEY_SECRET_ARN": SECRET_ARN})
    assert run.returncode == 0, run.stdout + run.stderr
    calls = Path(fake_aws["AWS_LOG"]).read_text().splitlines()
    package = next(call for call in calls if call.startswith("cloudformation package"))
    assert "--s3-bucket cache-warming-artifacts-123456789012-eu-west-1" in package
    deploy = next(call for call in calls if call.startswith("cloudformation deploy"))
    assert "--stack-name cache-warming-dev" in deploy
    # The template is over CloudFormation's 51,200-byte inline limit: it goes through S3.
    assert "--s3-bucket cache-warming-artifacts-123456789012-eu-west-1" in deploy
    assert "CAPABILITY_IAM" in deploy
    assert f"AnthropicApiKeySecretArn={SECRET_ARN}" in deploy
    assert "wss://ws.example/api/" in run.stdout
    assert "https://rest.example/api/" in run.stdout
    out_dir = Path(fake_aws["OUT_DIR"])
    assert (out_dir / "packaged.yaml").exists()
    assert list((out_dir.parent / "releases" / "cache-warming-dev").glob("*.yaml"))


def test_first_deploy_requires_the_secret_arn(fake_aws: dict[str, str]) -> None:
    run = _deploy(fake_aws)
    assert run.returncode != 0
    assert "ANTHROPIC_API_KEY_SECRET_ARN" in run.stderr
    calls = Path(fake_aws["AWS_LOG"]).read_text()
    assert "cloudformation deploy" not in calls
    # An existing stack keeps its parameter value.
    run = _deploy({**fake_aws, "STACK_EXISTS": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    deploy = [c for c in Path(fake_aws["AWS_LOG"]).read_text().splitlines() if "deploy" in c]
    assert deploy and "AnthropicApiKeySecretArn" not in deploy[-1]


def test_deploy_refuses_a_reservation_the_account_cannot_hold(fake_aws: dict[str, str]) -> None:
    # 300 (Warm) + 100 (Generate) reserved must leave 100 unreserved: 500 is the least that fits.
    env = {**fake_aws, "ANTHROPIC_API_KEY_SECRET_ARN": SECRET_ARN}
    run = _deploy({**env, "QUOTA": "499", "UNRESERVED": "499"})
    assert run.returncode != 0
    assert "Lambda keeps 100 unreserved" in run.stderr
    assert "WARM_RESERVED_CONCURRENCY" in run.stderr
    assert "cloudformation" not in Path(fake_aws["AWS_LOG"]).read_text()
    run = _deploy({**env, "QUOTA": "500", "UNRESERVED": "500"})
    assert run.returncode == 0, run.stdout + run.stderr
    run = _deploy({**env, "QUOTA": "499", "UNRESERVED": "499", "WARM_RESERVED_CONCURRENCY": "299"})
    assert run.returncode == 0, run.stdout + run.stderr
    deploy = [c for c in Path(fake_aws["AWS_LOG"]).read_text().splitlines() if "deploy" in c]
    assert "WarmReservedConcurrency=299" in deploy[-1]
    assert "GenerateReservedConcurrency=100" in deploy[-1]


def test_deploy_passes_the_alarm_parameters_only_when_set(fake_aws: dict[str, str]) -> None:
    env = {**fake_aws, "ANTHROPIC_API_KEY_SECRET_ARN": SECRET_ARN}
    run = _deploy(env)
    assert run.returncode == 0, run.stdout + run.stderr
    run = _deploy({**env, "ALARM_EMAIL": "ops@example.com", "ALARM_TOPIC_ARN": ""})
    assert run.returncode == 0, run.stdout + run.stderr
    first, second = [
        c
        for c in Path(fake_aws["AWS_LOG"]).read_text().splitlines()
        if "cloudformation deploy" in c
    ]
    # Unset: the stack keeps its values (a new stack: its own topic, no e-mail).
    assert "AlarmEmail" not in first and "AlarmTopicArn" not in first
    assert "AlarmEmail=ops@example.com" in second
    assert re.search(r"AlarmTopicArn=(\s|$)", second), second


# --- limits: throttling, access logs, concurrency, the generate function's async config -------

# Lambda's default concurrency per account and Region, and what it keeps for functions without
# reserved concurrency (Lambda developer guide, "Configuring reserved concurrency for a function":
# "You can reserve up to the Unreserved account concurrency value that is shown, minus 100").
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100
# Variables that could carry the query string (the WebSocket token travels in it) or a body.
LEAKY_LOG_VARIABLES = (
    "querystring",
    "querystrings",
    "$input",
    "$method.request",
    "requestoverride",
)


def _rest_stage(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"]["RestAPI"]["Properties"])


def _ws_stage(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"]["WebsocketAPIStage"]["Properties"])


def test_both_api_stages_are_throttled(template: dict[str, Any], resolver: Resolver) -> None:
    (rest,) = _rest_stage(template)["MethodSettings"]
    assert (rest["HttpMethod"], rest["ResourcePath"]) == ("*", "/*")
    ws = _ws_stage(template)["DefaultRouteSettings"]
    for settings in (rest, ws):
        assert 0 < settings["ThrottlingRateLimit"] <= settings["ThrottlingBurstLimit"]
        assert not settings.get("DataTraceEnabled"), "data traces log whole requests"
    # Steady state at the stage limits, at the handlers' timeouts as the worst latency, must fit
    # the concurrency left to the handlers once Warm's reservation is taken.
    warm = int(
        resolver.resolve(template["Resources"]["Warm"]["Properties"])[
            "ReservedConcurrentExecutions"
        ]
    )
    handlers_worst = rest["ThrottlingRateLimit"] * 1 + ws["ThrottlingRateLimit"] * 1  # ~1 s each
    assert handlers_worst <= ACCOUNT_CONCURRENCY - warm - UNRESERVED_MINIMUM


@pytest.mark.parametrize("api", ["rest", "websocket"])
def test_access_logs_never_carry_the_query_string(
    template: dict[str, Any], resolver: Resolver, api: str
) -> None:
    stage = _rest_stage(template) if api == "rest" else _ws_stage(template)
    settings = stage["AccessLogSetting"] if api == "rest" else stage["AccessLogSettings"]
    destination = resolver.resolve(settings["DestinationArn"])
    log_groups = [
        logical
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Logs::LogGroup"
        and resolver.getatt(logical, "Arn").removesuffix(":*") == destination.removesuffix(":*")
    ]
    assert len(log_groups) == 1, destination
    group = resolver.resolve(template["Resources"][log_groups[0]]["Properties"])
    assert int(group["RetentionInDays"]) >= 30
    fields = json.loads(settings["Format"])
    assert "$context.requestId" in fields.values()
    lowered = settings["Format"].lower()
    for leaky in LEAKY_LOG_VARIABLES:
        assert leaky not in lowered, leaky
    if api == "rest":
        # The resource template (`/conversations/{conversation_id}`), never the raw request line.
        assert "$context.resourcePath" in fields.values()
        assert "$context.path" not in fields.values()


def test_api_gateway_may_write_the_access_logs(
    template: dict[str, Any], resolver: Resolver
) -> None:
    account = template["Resources"]["ApiGatewayAccount"]
    assert account["Type"] == "AWS::ApiGateway::Account"
    role = template["Resources"][account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]
    # One per account and Region: kept when this stack goes, for the other stacks' stages.
    assert account["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]
    assert role["Properties"]["ManagedPolicyArns"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs"
        }
    ]
    # Without the role the stack cannot enable access logs: the stages wait for it.
    for stage in ("RestAPI", "WebsocketAPIStage"):
        assert "ApiGatewayAccount" in _as_list(template["Resources"][stage].get("DependsOn", []))


def test_warm_has_a_concurrency_ceiling_that_leaves_the_handlers_room(
    template: dict[str, Any], resolver: Resolver
) -> None:
    resources = template["Resources"]
    warm = int(resolver.resolve(resources["Warm"]["Properties"])["ReservedConcurrentExecutions"])
    assert 0 < warm <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM - 500
    generate = int(
        resolver.resolve(resources["Generate"]["Properties"])["ReservedConcurrentExecutions"]
    )
    assert generate > 0 and warm + generate <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM - 500
    for function in FUNCTIONS:
        if function not in ("Warm", "Generate"):
            # Reserving for a handler would cap it too; they share the unreserved pool.
            assert "ReservedConcurrentExecutions" not in resources[function]["Properties"]


def test_failed_generate_invocations_are_kept_and_age_out_quickly(
    template: dict[str, Any], resolver: Resolver
) -> None:
    from chalicelib.domain.turns import UNCLAIMED_AFTER_MS

    config = resolver.resolve(template["Resources"]["Generate"]["Properties"]["EventInvokeConfig"])
    assert config["MaximumEventAgeInSeconds"] == 120
    # A turn nobody claimed is failed by the next turn only once Lambda has given up on it.
    assert config["MaximumEventAgeInSeconds"] * 1000 < UNCLAIMED_AFTER_MS
    # Lambda retries about 1 minute, then 2 minutes later: one retry fits within 120 s.
    assert config["MaximumRetryAttempts"] == 1
    queue = config["DestinationConfig"]["OnFailure"]
    assert queue == {"Type": "SQS", "Destination": resolver.getatt("GenerateDLQ", "Arn")}
    statements = function_statements(resolver, "Generate")
    assert allowed(statements, "sqs:SendMessage", resolver.getatt("GenerateDLQ", "Arn"))
    alarm = resolver.resolve(template["Resources"]["GenerateDLQDepthAlarm"]["Properties"])
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": resolver.name("GenerateDLQ")}]


def test_jwks_mode_cannot_be_deployed_without_an_audience(template: dict[str, Any]) -> None:
    rule = template["Rules"]["JwksModeNamesItsClients"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtJwksUrl"}, ""]}]}
    asserted = [assertion["Assert"] for assertion in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtAudience"}, ""]}]} in asserted
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]} in asserted


# --- alarms and the dashboard (infra/observability.yaml) ----------------------------------------


def _alarms(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical: resource
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _watched(resolver: Resolver, alarm: Mapping[str, Any]) -> tuple[str, str, frozenset[Any]]:
    """(namespace, metric, dimensions) of an alarm, resolved to the strings CloudWatch compares."""
    properties = resolver.resolve(alarm["Properties"])
    dimensions = frozenset((d["Name"], d["Value"]) for d in properties.get("Dimensions", []))
    return properties["Namespace"], properties["MetricName"], dimensions


def _with(template: dict[str, Any], **parameters: str) -> Resolver:
    return Resolver(template, {"AnthropicApiKeySecretArn": SECRET_ARN, **parameters})


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_errors_and_a_throttles_alarm(
    template: dict[str, Any], resolver: Resolver, metric: str
) -> None:
    watched = [_watched(resolver, alarm) for alarm in _alarms(template).values()]
    for function in FUNCTIONS:
        wanted = ("AWS/Lambda", metric, frozenset({("FunctionName", resolver.name(function))}))
        assert watched.count(wanted) == 1, (function, metric)
    for alarm in _alarms(template).values():
        properties = alarm["Properties"]
        if (properties["Namespace"], properties["MetricName"]) == ("AWS/Lambda", metric):
            # Any error or throttle in 5 minutes, summed (Lambda's invocation metrics are counts).
            assert (properties["Statistic"], properties["Period"]) == ("Sum", 300)
            assert (properties["ComparisonOperator"], properties["Threshold"]) == (
                "GreaterThanThreshold",
                0,
            )


def test_every_alarm_notifies_the_stacks_topic_by_default_or_the_one_given(
    template: dict[str, Any], resolver: Resolver
) -> None:
    alarms = _alarms(template)
    assert len(alarms) >= 6 * 2 + 3 + 3 + 3
    resources = template["Resources"]
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert resolver.condition(resources["AlarmTopic"]["Condition"])
    created = resolver.ref("AlarmTopic")
    given = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"
    other = _with(template, AlarmTopicArn=given)
    assert not other.condition(resources["AlarmTopic"]["Condition"])
    assert not other.condition(resources["AlarmTopicKey"]["Condition"])
    for logical, alarm in alarms.items():
        assert "Condition" not in alarm, logical
        default = resolver.resolve(alarm["Properties"])
        assert default["AlarmActions"] == default["OKActions"] == [created], logical
        chosen = other.resolve(alarm["Properties"])
        assert chosen["AlarmActions"] == chosen["OKActions"] == [given], logical
        assert default.get("TreatMissingData") == "notBreaching", logical
    assert resolver.output("AlarmTopicArn") == created and other.output("AlarmTopicArn") == given


def test_the_alarm_email_is_subscribed_to_the_topic_in_use_only_when_given(
    template: dict[str, Any], resolver: Resolver
) -> None:
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Type"] == "AWS::SNS::Subscription"
    assert not resolver.condition(subscription["Condition"])
    pattern = template["Parameters"]["AlarmEmail"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "ops@example.com")
    assert not re.fullmatch(pattern, "not an address")
    for extra, topic in (
        ({}, resolver.ref("AlarmTopic")),
        (
            {"AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops"},
            "arn:aws:sns:eu-west-1:123456789012:ops",
        ),
    ):
        mailed = _with(template, AlarmEmail="ops@example.com", **extra)
        assert mailed.condition(subscription["Condition"])
        properties = mailed.resolve(subscription["Properties"])
        assert properties == {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": topic}


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(
    template: dict[str, Any], resolver: Resolver
) -> None:
    resources = template["Resources"]
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key"
    properties = resolver.resolve(key["Properties"])
    assert properties["EnableKeyRotation"] is True
    statements = properties["KeyPolicy"]["Statement"]
    cloudwatch = [
        s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    # SNS developer guide, "Enable compatibility between event sources from AWS services and
    # encrypted topics": the publishing service needs both.
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert allowed(cloudwatch, action, "*"), action
    assert not allowed(cloudwatch, "kms:Encrypt", "*")
    admin = [s for s in statements if s not in cloudwatch]
    assert [s["Principal"] for s in admin] == [{"AWS": f"arn:aws:iam::{ACCOUNT}:root"}]


def test_the_api_alarms_watch_this_stacks_apis(
    template: dict[str, Any], resolver: Resolver
) -> None:
    watched = {_watched(resolver, alarm) for alarm in _alarms(template).values()}
    rest = resolver.resolve(template["Resources"]["RestAPI"]["Properties"])
    # Named after the stack, so two stages in one account never share the ApiName dimension.
    assert rest["Name"] == rest["DefinitionBody"]["info"]["title"] == STACK
    assert rest["DefinitionBody"]["paths"], "the merge kept Chalice's routes"
    stage = {("Stage", rest["StageName"])}
    assert ("AWS/ApiGateway", "5XXError", frozenset({("ApiName", STACK), *stage})) in watched
    ws_stage = template["Resources"]["WebsocketAPIStage"]["Properties"]["StageName"]
    ws = frozenset({("ApiId", resolver.ref("WebsocketAPI")), ("Stage", ws_stage)})
    for metric in ("IntegrationError", "ExecutionError"):
        assert ("AWS/ApiGateway", metric, ws) in watched, metric
    for queue, metric in (
        ("WarmDLQ", "ApproximateNumberOfMessagesVisible"),
        ("GenerateDLQ", "ApproximateNumberOfMessagesVisible"),
        ("TickQueue", "ApproximateAgeOfOldestMessage"),
    ):
        dimensions = frozenset({("QueueName", resolver.name(queue))})
        assert ("AWS/SQS", metric, dimensions) in watched, queue


def _emitted(capsys: pytest.CaptureFixture[str]) -> set[tuple[str, str, frozenset[Any]]]:
    """(namespace, metric, dimensions) of every EMF line printed since the last read."""
    found = set()
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            dimensions = frozenset(
                (name, record[name]) for names in directive["Dimensions"] for name in names
            )
            for metric in directive["Metrics"]:
                found.add((directive["Namespace"], metric["Name"], dimensions))
    return found


@pytest.fixture
def deployed_namespace(resolver: Resolver, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The functions' METRICS_NAMESPACE from the template, in this process's settings."""
    from chalicelib.config import settings

    (namespace,) = {resolver.env(function)["METRICS_NAMESPACE"] for function in FUNCTIONS}
    monkeypatch.setenv("METRICS_NAMESPACE", namespace)
    settings.cache_clear()
    yield namespace
    settings.cache_clear()


def test_the_product_alarms_watch_what_the_code_emits(
    template: dict[str, Any],
    resolver: Resolver,
    deployed_namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chalicelib.logs import emit_tick_metrics
    from chalicelib.metrics import push_failed
    from chalicelib.services import TickReport

    # Per stack: the namespace is built from the stack's name, on every function.
    assert deployed_namespace == f"CacheWarming/{STACK}"
    for function in FUNCTIONS:
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["METRICS_NAMESPACE"] == {"Fn::Sub": "CacheWarming/${AWS::StackName}"}
    capsys.readouterr()
    emit_tick_metrics(TickReport("c1", 4, 1000, "warmed", lateness_ms=2500))
    emit_tick_metrics(TickReport("c1", 5, 1000, "warm-failed", lateness_ms=10))
    push_failed("too-large")
    emitted = _emitted(capsys)
    alarms = {logical: _watched(resolver, alarm) for logical, alarm in _alarms(template).items()}
    product = {logical: key for logical, key in alarms.items() if key[0] == deployed_namespace}
    assert {key[1] for key in product.values()} == {
        "TickLatenessMs",
        "WarmFailures",
        "PushesFailed",
    }
    for logical, key in product.items():
        assert key in emitted, (logical, key, emitted)
    lateness = resolver.resolve(template["Resources"]["WarmLatenessAlarm"]["Properties"])
    # The promise: a warm starts within 2 s of the nextWarmAt the user was shown.
    assert (lateness["Threshold"], lateness["ComparisonOperator"]) == (2000, "GreaterThanThreshold")
    assert lateness["ExtendedStatistic"] == "p99"


def _dashboard_metrics(resolver: Resolver) -> list[tuple[str, str, frozenset[Any]]]:
    dashboard = resolver.resolve(resolver.resources["Dashboard"]["Properties"])
    found = []
    for widget in json.loads(dashboard["DashboardBody"])["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            names = [part for part in metric if isinstance(part, str)]
            pairs = frozenset(zip(names[2::2], names[3::2], strict=True))
            found.append((names[0], names[1], pairs))
    return found


def test_the_dashboard_shows_every_function_and_every_alarmed_metric(
    template: dict[str, Any], resolver: Resolver
) -> None:
    assert template["Resources"]["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    assert (
        resolver.resolve(template["Resources"]["Dashboard"]["Properties"])["DashboardName"] == STACK
    )
    shown = set(_dashboard_metrics(resolver))
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            dimensions = frozenset({("FunctionName", resolver.name(function))})
            assert ("AWS/Lambda", metric, dimensions) in shown, (function, metric)
    for logical, alarm in _alarms(template).items():
        assert _watched(resolver, alarm) in shown, logical


# --- sign-in: the optional Cognito user pool (issue 19) -----------------------------------------

POOL_RESOURCES = ("UserPool", "UserPoolClient")


def test_the_user_pool_is_optional_and_off_by_default(
    template: dict[str, Any], resolver: Resolver
) -> None:
    parameter = template["Parameters"]["CreateUserPool"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["false", "true"])
    assert template["Conditions"]["UsesUserPool"] == {
        "Fn::Equals": [{"Ref": "CreateUserPool"}, "true"]
    }
    for logical in POOL_RESOURCES:
        assert template["Resources"][logical]["Condition"] == "UsesUserPool"
    for output in ("UserPoolId", "UserPoolClientId"):
        assert template["Outputs"][output]["Condition"] == "UsesUserPool"
    assert not resolver.condition("UsesUserPool")
    for function in FUNCTIONS:  # off: HS256 with the generated secret
        env = resolver.env(function)
        assert (env["JWT_JWKS_URL"], env["JWT_ISSUER"], env["JWT_AUDIENCE"]) == ("", "", "")
        assert env["JWT_SECRET_ID"] == resolver.ref("JwtSigningSecret")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_with_the_user_pool_every_function_verifies_its_access_tokens(
    template: dict[str, Any], function: str
) -> None:
    from chalicelib.auth import JwksVerifier, audiences

    on = Resolver(template, {"AnthropicApiKeySecretArn": SECRET_ARN, "CreateUserPool": "true"})
    assert on.condition("UsesUserPool")
    pool, client = on.ref("UserPool"), on.ref("UserPoolClient")
    # The issuer and JWKS URL of a user pool: Amazon Cognito Developer Guide, "Verifying JSON web
    # tokens" (the `iss` claim; the `jwks_uri`), read 2026-12-07.
    issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{pool}"
    env = on.env(function)
    assert env["JWT_JWKS_URL"] == f"{issuer}/.well-known/jwks.json"
    assert env["JWT_ISSUER"] == issuer
    assert env["JWT_AUDIENCE"] == client
    settings = settings_from({**env, "AWS_REGION": REGION})
    verifier = JwksVerifier(
        settings.jwt_jwks_url, settings.jwt_issuer, audiences(settings.jwt_audience)
    )
    assert verifier.allowed_clients == frozenset({client})
    assert on.output("UserPoolId") == pool and on.output("UserPoolClientId") == client


def test_the_user_pool_keeps_its_users_and_the_client_is_public(template: dict[str, Any]) -> None:
    pool = template["Resources"]["UserPool"]
    # A new pool would give every user a new `sub`, orphaning their conversations.
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    assert pool["Properties"]["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    client = template["Resources"]["UserPoolClient"]["Properties"]
    assert client["UserPoolId"] == {"Ref": "UserPool"}
    assert client["GenerateSecret"] is False  # a browser cannot keep a secret
    # `make smoke` signs its test user in with the admin flow (IAM credentials, never a browser).
    assert "ALLOW_ADMIN_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]
    assert "ALLOW_USER_PASSWORD_AUTH" not in client["ExplicitAuthFlows"]
    assert client["TokenValidityUnits"]["AccessToken"] == "minutes"
    assert 5 <= client["AccessTokenValidity"] <= 60


def test_the_user_pool_and_an_outside_provider_are_exclusive(template: dict[str, Any]) -> None:
    rule = template["Rules"]["UserPoolOrOutsideProvider"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CreateUserPool"}, "true"]}
    (assertion,) = rule["Assertions"]
    emptied = {
        item["Fn::Equals"][0]["Ref"]
        for item in assertion["Assert"]["Fn::And"]
        if item["Fn::Equals"][1] == ""
    }
    assert emptied == {"JwtJwksUrl", "JwtIssuer", "JwtAudience"}


def test_moto_does_not_model_the_user_pool_in_cloudformation() -> None:
    """Why the pool is not created in moto's CloudFormation (test_deploy_moto.py): moto 5.2.5 has
    no CloudFormation model for either type (moto/cloudformation/parsing.py, get_model_map), so it
    would log "No Moto CloudFormation support" and create nothing. When moto gains one, this fails:
    then create the pool there too."""
    from moto.cloudformation.parsing import get_model_map

    modelled = get_model_map()
    assert {"AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient"}.isdisjoint(modelled)
