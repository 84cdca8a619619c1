"""IAM in the packaged template: a role per function, each allowed only what that function
calls, on this stack's resources only.

What each function calls is written out here from app.py and chalicelib/ (independently of
``infra.render.FUNCTION_ACCESS``, which renders the policies), so a policy that grows or
shrinks fails a test that says which function and which action.
"""

import json
import re

import pytest

from infra import render
from infra.package import package

STAGE = "dev"

# Actions that take no resource narrower than "*", and why.
UNSCOPABLE = {
    # X-Ray has no resource-level permissions: traces go to the account.
    "xray:PutTraceSegments": "no resource types",
    "xray:PutTelemetryRecords": "no resource types",
    # Lambda creates and deletes the functions' network interfaces in the VPC with the
    # execution role; AWS's AWSLambdaVPCAccessExecutionRole grants them on "*", Describe*
    # has no resource types at all.
    "ec2:CreateNetworkInterface": "AWSLambdaVPCAccessExecutionRole grants it on *",
    "ec2:DescribeNetworkInterfaces": "no resource types",
    "ec2:DescribeSubnets": "no resource types",
    "ec2:DeleteNetworkInterface": "AWSLambdaVPCAccessExecutionRole grants it on *",
    "ec2:AssignPrivateIpAddresses": "AWSLambdaVPCAccessExecutionRole grants it on *",
    "ec2:UnassignPrivateIpAddresses": "AWSLambdaVPCAccessExecutionRole grants it on *",
    # cloudwatch:PutMetricData would be one too (scoped by a cloudwatch:namespace condition),
    # but no function calls it: metrics are EMF documents in the log streams.
}
# Where a scoped resource may still hold a wildcard: the streams of a log group, and the
# connection id of a WebSocket API's stage.
ALLOWED_WILDCARD_ENDINGS = (":*", "/@connections/*")

SEND = {"sqs:SendMessage", "sqs:GetQueueUrl"}
TAKE = {"sqs:ReceiveMessage", "sqs:DeleteMessage"}  # what an event source does with messages
CONSUME = TAKE | {"sqs:GetQueueAttributes"}
BOTH = {"database", "redis"}
# logical id -> (orders queue actions, DLQ actions, @connections methods, secrets)
EXPECTED = {
    # submit, amend, cancel: send an order, push; readiness reads the queue's attributes
    "APIHandler": (SEND | {"sqs:GetQueueAttributes"}, set(), {"POST"}, BOTH),
    "ApiKey": (set(), set(), set(), {"database"}),  # the authorizer: a key lookup
    "ProcessOrders": (
        CONSUME | SEND | {"sqs:ChangeMessageVisibility"},
        SEND,  # dead_letters.poison: an unreadable message to the DLQ
        {"POST"},
        BOTH,
    ),
    "RecordDeadLetters": (SEND, CONSUME, {"POST"}, BOTH),  # a failed push queues a replay
    "ReapStaleOrders": (SEND, set(), {"POST"}, BOTH),
    "CheckLimitOrders": (SEND, set(), {"POST"}, BOTH),
    "WebsocketConnect": (SEND, set(), set(), BOTH),  # queues the replay; cannot post yet
    "WebsocketMessage": (SEND, set(), {"POST", "DELETE"}, BOTH),  # closes revoked sockets
    "WebsocketDisconnect": (set(), set(), set(), {"redis"}),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    return json.loads(package(STAGE, out, with_dependencies=False).read_text())


@pytest.fixture(scope="module")
def settings():
    return render.stage_settings(STAGE)


def functions(template):
    return {
        k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }


def statements_of(template, function_id):
    role_id = functions(template)[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = template["Resources"][role_id]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    return statements


def resources(statement):
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def text(resource):
    """A resource as the ARN (pattern) it stands for."""
    if isinstance(resource, str):
        return resource
    if "Fn::Sub" in resource:
        return resource["Fn::Sub"]
    if "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        return f"${{{logical_id}.{attribute}}}"
    raise AssertionError(f"unexpected resource {resource!r}")


def actions_on(template, function_id, predicate):
    return {
        action
        for s in statements_of(template, function_id)
        if any(predicate(r) for r in resources(s))
        for action in s["Action"]
    }


def test_every_function_has_a_role_of_its_own(template):
    roles = [fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions(template).values()]
    assert len(set(roles)) == len(roles) == len(EXPECTED)
    assert set(functions(template)) == set(EXPECTED)
    for role in roles:
        assert template["Resources"][role]["Type"] == "AWS::IAM::Role"


def test_no_statement_allows_every_resource_where_a_narrower_one_exists(template):
    for fid in functions(template):
        for statement in statements_of(template, fid):
            for resource in map(text, resources(statement)):
                if resource == "*":
                    loose = set(statement["Action"]) - set(UNSCOPABLE)
                    assert not loose, (fid, statement["Sid"], loose)
                    continue
                assert not set(statement["Action"]) & set(UNSCOPABLE), (fid, statement["Sid"])
                stem = resource
                for ending in ALLOWED_WILDCARD_ENDINGS:
                    stem = stem.removesuffix(ending)
                assert "*" not in stem, (fid, statement["Sid"], resource)


def test_no_function_publishes_metrics_by_api(template):
    for fid in functions(template):
        actions = {a for s in statements_of(template, fid) for a in s["Action"]}
        assert not {a for a in actions if a.startswith("cloudwatch:")}, fid


def test_each_function_writes_its_own_log_group_only(template):
    for fid, fn in functions(template).items():
        name = fn["Properties"]["FunctionName"]
        (logs,) = [s for s in statements_of(template, fid) if s["Sid"] == "Logs"]
        assert set(logs["Action"]) == {
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        }
        for resource in map(text, resources(logs)):
            assert re.fullmatch(
                r"arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
                rf"log-group:/aws/lambda/{re.escape(name)}(:\*)?",
                resource,
            ), (fid, resource)
        other_logs = {a for s in statements_of(template, fid) if s is not logs for a in s["Action"]}
        assert not {a for a in other_logs if a.startswith("logs:")}, fid
    names = [fn["Properties"]["FunctionName"] for fn in functions(template).values()]
    assert len(set(names)) == len(names)
    assert functions(template)["ProcessOrders"]["Properties"]["FunctionName"] == (
        "order-engine-dev-process_orders"  # as chalice deploy names it
    )


def test_manage_connections_is_scoped_to_this_websocket_api_and_stage(template):
    (api_id,) = [
        k for k, v in template["Resources"].items() if v["Type"] == "AWS::ApiGatewayV2::Api"
    ]
    stage = template["Resources"]["WebsocketAPIStage"]["Properties"]["StageName"]
    assert template["Resources"]["WebsocketAPIStage"]["Properties"]["ApiId"] == {"Ref": api_id}
    pattern = re.compile(
        r"arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
        rf"\$\{{{api_id}\}}/{stage}/(POST|DELETE)/@connections/\*"
    )
    for fid in functions(template):
        for statement in statements_of(template, fid):
            if not any(a.startswith("execute-api:") for a in statement["Action"]):
                continue
            assert statement["Action"] == ["execute-api:ManageConnections"], fid
            for resource in resources(statement):
                assert set(resource) == {"Fn::Sub"}, (fid, resource)
                assert pattern.fullmatch(resource["Fn::Sub"]), (fid, resource)


def test_each_function_may_do_what_it_calls_and_nothing_else(template, settings):
    secret_ids = {
        "database": settings.storage.database_password_secret,
        "redis": settings.storage.redis_auth_secret,
    }
    for fid, (orders, dlq, methods, secrets) in EXPECTED.items():
        statements = statements_of(template, fid)
        on_orders = actions_on(template, fid, lambda r: r == {"Fn::GetAtt": ["OrdersQueue", "Arn"]})
        on_dlq = actions_on(
            template, fid, lambda r: r == {"Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]}
        )
        assert on_orders == orders, fid
        assert on_dlq == dlq, fid
        sqs = {a for s in statements for a in s["Action"] if a.startswith("sqs:")}
        assert sqs == orders | dlq, (fid, "sqs on another resource")
        pushed = {
            text(r).split("/")[2]
            for s in statements
            if "execute-api:ManageConnections" in s["Action"]
            for r in resources(s)
        }
        assert pushed == methods, fid
        read = {r for s in statements if s["Sid"] == "Secrets" for r in resources(s)}
        assert read == {secret_ids[s] for s in secrets}, fid
        services = {a.split(":")[0] for s in statements for a in s["Action"]}
        assert services <= {"logs", "xray", "ec2", "sqs", "execute-api", "secretsmanager"}, fid


def test_the_http_function_cannot_take_messages_off_the_queue(template):
    actions = {a for s in statements_of(template, "APIHandler") for a in s["Action"]}
    assert not actions & {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}


def test_only_a_queue_s_consumer_receives_and_deletes_its_messages(template):
    """Consumers from the event sources chalice generated, not from the table above."""
    consumers = {}
    for fid, fn in functions(template).items():
        for event in (fn["Properties"].get("Events") or {}).values():
            if event["Type"] == "SQS":
                name = render.sqs_event_queue_name(event["Properties"]["Queue"])
                consumers[fid] = render.queue_logical_ids(render.stage_settings(STAGE))[name]
    assert consumers == {
        "ProcessOrders": "OrdersQueue",
        "RecordDeadLetters": "OrdersDeadLetterQueue",
    }
    for fid in functions(template):
        for statement in statements_of(template, fid):
            if not TAKE & set(statement["Action"]):
                continue
            assert set(statement["Action"]) >= CONSUME, (fid, statement["Sid"])
            assert resources(statement) == [{"Fn::GetAtt": [consumers.get(fid), "Arn"]}], fid


def test_policy_files_are_rendered_from_the_definitions():
    files = render.policy_files(STAGE)
    assert {p.stem for p in files} == set(render.FUNCTION_ACCESS)
    for path, expected in files.items():
        assert path.exists() and path.read_text() == expected, (
            f"{path} is stale: run `python -m infra policy`"
        )


def test_policy_files_scope_pushes_to_the_api_ws_public_url_names(settings):
    """``chalice deploy`` reads the files: the WebSocket API is the one WS_PUBLIC_URL names."""
    deployed = settings.updated(
        ws_public_url="wss://abc123defg.execute-api.eu-west-1.amazonaws.com/dev"
    )
    arns = render.file_arns(deployed, "dev")
    assert arns.connections("POST") == (
        "arn:*:execute-api:eu-west-1:*:abc123defg/dev/POST/@connections/*"
    )
    spec = render.function_specs(STAGE)["websocket_message"]
    policy = render.iam_policy(spec, deployed, arns)
    (push,) = [s for s in policy["Statement"] if s["Sid"] == "WebSocketConnections"]
    assert push["Resource"] == [
        "arn:*:execute-api:eu-west-1:*:abc123defg/dev/POST/@connections/*",
        "arn:*:execute-api:eu-west-1:*:abc123defg/dev/DELETE/@connections/*",
    ]
    with pytest.raises(ValueError, match="WS_PUBLIC_URL"):
        render.file_arns(settings.updated(ws_public_url="wss://ws.example.com/dev"), "dev")
