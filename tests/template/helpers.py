"""Reading CloudFormation the way the template tests need: resources by type, policies, conditional values."""

from __future__ import annotations

import json
import re
from typing import Any

NO_VALUE = {"Ref": "AWS::NoValue"}
IDENTITY_POLICY_TYPES = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
RESOURCE_POLICY_TYPES = {
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::Logs::ResourcePolicy": "PolicyDocument",
}
_SUB_REFERENCE = re.compile(r"\$\{([^}!][^}]*)\}")


def of_type(resources: dict[str, dict[str, Any]], resource_type: str) -> dict[str, dict[str, Any]]:
    """The resources of one CloudFormation type, by logical ID."""
    return {name: res for name, res in resources.items() if res["Type"] == resource_type}


def only(resources: dict[str, dict[str, Any]], resource_type: str) -> dict[str, Any]:
    """The Properties of the single resource of a type."""
    matching = of_type(resources, resource_type)
    assert len(matching) == 1, f"expected one {resource_type}, found {sorted(matching)}"
    properties: dict[str, Any] = next(iter(matching.values()))["Properties"]
    return properties


def as_list(value: Any) -> list[Any]:
    """A scalar or list as a list."""
    return value if isinstance(value, list) else [value]


def strings_in(value: Any) -> list[str]:
    """Every string leaf of a (possibly intrinsic) value, e.g. both branches of an Fn::If."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


def branches(value: Any) -> list[Any]:
    """What a possibly conditional value can be: both sides of every Fn::If, AWS::NoValue left out."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        return [*branches(when_true), *branches(when_false)]
    if value == NO_VALUE:
        return []
    return [value]


def policy_documents(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every identity policy document of an IAM role, policy or managed policy, conditional ones included."""
    properties = resource.get("Properties", {})
    if resource["Type"] == "AWS::IAM::Role":
        return [policy["PolicyDocument"] for item in properties.get("Policies", []) for policy in branches(item)]
    return [properties["PolicyDocument"]]


def policy_statements(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every statement of every IAM role and policy."""
    return [
        (name, statement)
        for name, resource in resources.items()
        if resource["Type"] in IDENTITY_POLICY_TYPES
        for document in policy_documents(resource)
        for statement in as_list(document["Statement"])
    ]


def resource_policy_document(resource: dict[str, Any]) -> dict[str, Any]:
    """The policy of a queue, topic or CloudWatch Logs resource policy (the last is JSON text in an Fn::Sub)."""
    document = resource["Properties"][RESOURCE_POLICY_TYPES[resource["Type"]]]
    if isinstance(document, str):
        return dict(json.loads(document))
    if set(document) == {"Fn::Sub"}:
        return dict(parse_sub_json(document["Fn::Sub"]))
    return dict(document)


def resource_policy_statements(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every statement of every queue, topic and CloudWatch Logs resource policy."""
    return [
        (name, statement)
        for name, resource in resources.items()
        if resource["Type"] in RESOURCE_POLICY_TYPES
        for statement in as_list(resource_policy_document(resource)["Statement"])
    ]


def key_policy_statements(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(key, statement) for every statement of every KMS key policy."""
    return [
        (name, statement)
        for name, resource in resources.items()
        if resource["Type"] == "AWS::KMS::Key"
        for statement in as_list(resource["Properties"]["KeyPolicy"]["Statement"])
    ]


def statements_allowing(resources: dict[str, dict[str, Any]], owner: str, action: str) -> list[dict[str, Any]]:
    """The Allow statements of one role or policy that grant exactly this action."""
    return [
        statement
        for name, statement in policy_statements(resources)
        if name == owner and statement["Effect"] == "Allow" and action in as_list(statement["Action"])
    ]


def sub_references(template_string: str) -> set[str]:
    """The names an Fn::Sub string refers to: `${Resource}`, `${Resource.Attribute}`, `${AWS::Region}`."""
    return set(_SUB_REFERENCE.findall(template_string))


def parse_sub_json(template_string: str) -> Any:
    """JSON written inside an Fn::Sub string, each `${X}` read as the string "${X}" (or inside a string, as is).

    A reference outside a JSON string (a number such as `"value": ${Threshold}`) becomes the string "${X}" so the
    document parses; tests then look references up by that text.
    """
    parts: list[str] = []
    in_string = escaped = False
    position = 0
    while position < len(template_string):
        char = template_string[position]
        match = _SUB_REFERENCE.match(template_string, position)
        if match:
            parts.append(match.group(0) if in_string else json.dumps(match.group(0)))
            position = match.end()
            continue
        if in_string and escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
        parts.append(char)
        position += 1
    return json.loads("".join(parts))


def deployed(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The (transformed) template as CloudFormation deploys it with these parameter values (defaults otherwise).

    Conditions are evaluated (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition), each Fn::If becomes its chosen
    branch, AWS::NoValue removes its key or list item, and resources and outputs whose Condition is false are
    left out. A CommaDelimitedList parameter's Ref becomes its items (each stripped, as CloudFormation does) and
    an Fn::Join of one becomes the joined text. Other intrinsics (Ref, Fn::GetAtt, Fn::Sub) stay as they are.
    """
    declared = template.get("Parameters", {})
    unknown = set(parameters or {}) - set(declared)
    assert not unknown, f"not template parameters: {sorted(unknown)}"
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
    values.update(parameters or {})
    lists = {name for name, spec in declared.items() if spec.get("Type") == "CommaDelimitedList"}
    conditions: dict[str, bool] = {}

    def condition(name: str) -> bool:
        if name not in conditions:
            conditions[name] = truth(template["Conditions"][name])
        return conditions[name]

    def listed(value: Any) -> list[str] | None:
        """The items of a Ref to a CommaDelimitedList parameter; None for anything else."""
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in lists:
            return [item.strip() for item in values[value["Ref"]].split(",")]
        return None

    def joined(value: Any) -> str | None:
        """The text of an Fn::Join of a CommaDelimitedList parameter; None for anything else."""
        if isinstance(value, dict) and set(value) == {"Fn::Join"}:
            delimiter, items = value["Fn::Join"]
            found = listed(items)
            return delimiter.join(found) if found is not None else None
        return None

    def scalar(value: Any) -> Any:
        if joined(value) is not None:
            return joined(value)
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in values:
            return values[value["Ref"]]
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    def truth(expression: Any) -> bool:
        [(function, argument)] = expression.items()
        if function == "Fn::Equals":
            left, right = (scalar(item) for item in argument)
            return bool(left == right)
        if function == "Fn::Not":
            return not truth(argument[0])
        if function == "Fn::And":
            return all(truth(item) for item in argument)
        if function == "Fn::Or":
            return any(truth(item) for item in argument)
        if function == "Condition":
            return condition(argument)
        raise AssertionError(f"unsupported condition function {function}")

    def resolve(value: Any) -> Any:
        if listed(value) is not None or joined(value) is not None:
            return listed(value) if listed(value) is not None else joined(value)
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return resolve(when_true if condition(name) else when_false)
        if isinstance(value, dict):
            resolved = {key: resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item != NO_VALUE}
        if isinstance(value, list):
            return [item for item in (resolve(item) for item in value) if item != NO_VALUE]
        return value

    result = dict(template)
    for section in ("Resources", "Outputs"):
        kept = {
            name: entry
            for name, entry in template.get(section, {}).items()
            if "Condition" not in entry or condition(entry["Condition"])
        }
        result[section] = resolve(kept)
    return result
