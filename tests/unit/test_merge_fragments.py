"""scripts/merge_fragments.py: a fragment extends the packaged template with Chalice's merge
rule, and is refused where it would silently replace a definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.merge_fragments import MergeConflict, load_fragment, main, merge


def packaged() -> dict[str, Any]:
    return {
        "Parameters": {"Stage": {"Type": "String"}},
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Environment": {"Variables": {"A": "1"}},
                    "Layers": ["x", "y"],
                },
            }
        },
    }


def test_a_fragment_extends_a_resource_and_adds_new_ones() -> None:
    fragment = load_fragment(
        "Resources:\n"
        "  Fn:\n"
        "    Properties:\n"
        "      Environment: {Variables: {B: !Sub '${AWS::StackName}'}}\n"
        "      Layers: [z]\n"
        "  Topic:\n"
        "    Type: AWS::SNS::Topic\n"
        "    Condition: Always\n"
        "    Properties: {KmsMasterKeyId: !GetAtt Key.Arn}\n"
    )
    merged = merge(packaged(), fragment)
    function = merged["Resources"]["Fn"]
    assert function["Type"] == "AWS::Serverless::Function"
    assert function["Properties"]["Environment"]["Variables"] == {
        "A": "1",
        "B": {"Fn::Sub": "${AWS::StackName}"},
    }
    # As with `chalice package --merge-template`: a list replaces the list it meets.
    assert function["Properties"]["Layers"] == ["z"]
    topic = merged["Resources"]["Topic"]["Properties"]
    assert topic == {"KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}}
    assert merged["Parameters"] == packaged()["Parameters"]


@pytest.mark.parametrize(
    "fragment,named",
    [
        ("Parameters: {Stage: {Type: String}}", "Parameters.Stage"),
        ("Resources: {Fn: {Type: AWS::Lambda::Function}}", "Resources.Fn"),
        ("Resources: {Gone: {Properties: {A: 1}}}", "Resources.Gone"),
    ],
)
def test_a_fragment_may_not_replace_or_extend_what_is_not_its_own(
    fragment: str, named: str
) -> None:
    with pytest.raises(MergeConflict, match=named):
        merge(packaged(), load_fragment(fragment))


def test_the_command_expands_aliases_and_refuses_a_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "sam.yaml"
    template.write_text(
        "Resources:\n  A: {Type: T, Properties: &shared {X: 1}}\n  B: {Type: T, Properties: *shared}\n"
    )
    fragment = tmp_path / "extra.yaml"
    fragment.write_text("Outputs:\n  Out: {Value: !Ref A}\n")
    assert main([str(template), str(fragment)]) == 0
    text = template.read_text()
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text)["Outputs"] == {"Out": {"Value": {"Ref": "A"}}}
    assert main([str(template), str(fragment)]) == 1
    assert "Outputs.Out" in capsys.readouterr().err
