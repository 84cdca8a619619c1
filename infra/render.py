"""The AWS side of ``infra/``, rendered from the one set of queue definitions.

``chalice package`` creates the functions, the REST and WebSocket APIs, the SQS event sources
and the schedule. What it does not create is rendered here and merged into its template with
``chalice package --merge-template`` (see ``infra/package.py``):

- the orders queue and its dead-letter queue, from ``chalicelib.backends.queue_setup`` (the same
  definitions ``chalicelib.startup.ensure_queues`` creates), with the redrive policy; both
  are kept (``Retain``) when the stack is deleted or an update would replace them, since they
  can hold the messages of orders still in flight;
- ``FunctionResponseTypes: [ReportBatchItemFailures]`` on the orders queue's event source
  (chalice cannot set it; ``MaximumConcurrency`` it sets from the decorator), and a
  ``DependsOn`` from each SQS consumer to its queue;
- parameters for ``DATABASE_URL``/``REDIS_URL`` and the VPC, the WebSocket URL clients are given,
  and outputs the demo client is pointed at.

The IAM policy (``iam_policy``) is a file chalice reads itself (``iam_policy_file``), so
``chalice deploy`` gets it too: ``python -m infra policy`` writes it, packaging refuses to run
when the committed file is stale.
"""

import json
from pathlib import Path
from typing import Any

from chalice.config import Config

from chalicelib import config
from chalicelib.backends.queue_setup import queue_definitions, redrive_policy
from chalicelib.config import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent

# AWS advice for SQS event sources: visibility timeout >= 6 x the function's timeout.
VISIBILITY_PER_FUNCTION_TIMEOUT = 6
SQS_DEFAULT_VISIBILITY_S = 30
# The WebSocket API's share of the account: route throttling on its stage (requests a second
# across all connections, and the burst) and reserved concurrency for each of its handlers, so
# a flood of frames is refused at the gateway (429) and never takes the concurrency the REST
# API (order submission) and the worker need.
WS_THROTTLING_RATE = 200
WS_THROTTLING_BURST = 400
WS_RESERVED_CONCURRENCY = 20
WS_HANDLER_PREFIX = "app.ws_"

SQS_ACTIONS = [
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]
WEBSOCKET_ACTIONS = ["execute-api:ManageConnections"]
LOGS_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]  # no resource-level ARNs
# As AWS's AWSLambdaVPCAccessExecutionRole grants them.
VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]

SECRETS_ACTIONS = ["secretsmanager:GetSecretValue"]
# Stage throttling in API Gateway, in front of the per-client limit (access/ratelimit.py):
# what the whole API takes, whoever asks, and what one WebSocket route takes.
REST_THROTTLE = {"ThrottlingRateLimit": 500, "ThrottlingBurstLimit": 1000}
WS_THROTTLE = {"ThrottlingRateLimit": 200, "ThrottlingBurstLimit": 400}

QUEUE_LOGICAL_ID = "OrdersQueue"
DLQ_LOGICAL_ID = "OrdersDeadLetterQueue"


# --- the stage: .chalice/config.json -> Settings ------------------------------------------


def chalice_config(stage: str, project_dir: Path = PROJECT_DIR) -> Config:
    data = json.loads((project_dir / ".chalice" / "config.json").read_text())
    if stage not in data.get("stages", {}):
        raise ValueError(f"no stage {stage!r} in .chalice/config.json")
    return Config(
        chalice_stage=stage,
        config_from_disk=data,
        default_params={"project_dir": str(project_dir), "autogen_policy": True},
    )


def stage_settings(stage: str, project_dir: Path = PROJECT_DIR) -> Settings:
    """The settings the stage's functions run with: code defaults + the stage's variables.

    The shell's environment plays no part, so a package depends on the repository only.
    """
    return config.from_values(chalice_config(stage, project_dir).environment_variables or {})


# --- IAM -------------------------------------------------------------------------------------


def queue_arn_pattern(name: str) -> str:
    return f"arn:*:sqs:*:*:{name}"


def iam_policy(settings: Settings) -> dict[str, Any]:
    """The functions' policy: logs, traces, the two queues, WebSocket pushes, VPC network
    interfaces, and reading exactly the stage's two secrets (the database password, the Redis
    token)."""
    queues = [queue_arn_pattern(name) for name in queue_definitions(settings)]
    secrets = [
        s
        for s in (settings.storage.database_password_secret, settings.storage.redis_auth_secret)
        if s
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": LOGS_ACTIONS,
                "Resource": "arn:*:logs:*:*:*",
            },
            {"Sid": "Tracing", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"},
            {"Sid": "OrdersQueues", "Effect": "Allow", "Action": SQS_ACTIONS, "Resource": queues},
            {
                "Sid": "WebSocketPush",
                "Effect": "Allow",
                "Action": WEBSOCKET_ACTIONS,
                "Resource": "arn:*:execute-api:*:*:*/@connections/*",
            },
            {
                "Sid": "VpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": VPC_ACTIONS,
                "Resource": "*",
            },
        ],
    }
    if secrets:
        policy["Statement"].append(
            {"Sid": "Secrets", "Effect": "Allow", "Action": SECRETS_ACTIONS, "Resource": secrets}
        )
    return policy


def policy_json(settings: Settings) -> str:
    return json.dumps(iam_policy(settings), indent=2) + "\n"


def policy_path(stage: str, project_dir: Path = PROJECT_DIR) -> Path | None:
    """The policy file the stage names (``iam_policy_file``), or None when chalice autogens."""
    config = chalice_config(stage, project_dir)
    if config.autogen_policy:
        return None
    name = config.iam_policy_file or f"policy-{stage}.json"
    return (project_dir / ".chalice" / name).resolve()


# --- CloudFormation --------------------------------------------------------------------------


def _cfn_value(value: str) -> Any:
    """An SQS attribute (always a string in the SQS API) as CloudFormation types it."""
    if value.isdigit():
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    return value


def queue_logical_ids(settings: Settings) -> dict[str, str]:
    return {
        settings.queue.orders_queue_name: QUEUE_LOGICAL_ID,
        settings.queue.orders_dlq_name: DLQ_LOGICAL_ID,
    }


def queue_resources(settings: Settings) -> dict[str, Any]:
    """``AWS::SQS::Queue`` resources, one per ``queue_definitions`` entry."""
    ids = queue_logical_ids(settings)
    resources = {}
    for name, attributes in queue_definitions(settings).items():
        if name not in ids:
            raise ValueError(f"queue {name!r} has no CloudFormation logical id in infra/render.py")
        properties = {"QueueName": name, **{k: _cfn_value(v) for k, v in attributes.items()}}
        if name == settings.queue.orders_queue_name:
            policy = json.loads(redrive_policy("DLQ_ARN", settings))
            policy["deadLetterTargetArn"] = {"Fn::GetAtt": [DLQ_LOGICAL_ID, "Arn"]}
            policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
            properties["RedrivePolicy"] = policy
        resources[ids[name]] = {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        }
    return resources


def sqs_event_queue_name(queue: Any) -> str:
    """The queue name in chalice's ``Queue`` value (a literal ARN or an ``Fn::Sub`` of one)."""
    arn = queue.get("Fn::Sub") if isinstance(queue, dict) else queue
    if not isinstance(arn, str):
        raise ValueError(f"unexpected SQS event source queue: {queue!r}")
    return arn.rsplit(":", 1)[-1]


def _stage_name(base: dict[str, Any], logical_id: str) -> str | None:
    resource = base["Resources"].get(logical_id)
    return resource["Properties"]["StageName"] if resource else None


def _api_url(scheme: str, api_logical_id: str, stage: str | None) -> dict[str, str]:
    host = f"${{{api_logical_id}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
    return {"Fn::Sub": f"{scheme}://{host}/{stage}"}


def merge_template(base: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The template merged into ``base`` (what ``chalice package`` generates without it)."""
    queues = queue_resources(settings)
    ids = queue_logical_ids(settings)
    rest_stage = _stage_name(base, "RestAPI")
    ws_stage = _stage_name(base, "WebsocketAPIStage")
    ws_url = _api_url("wss", "WebsocketAPI", ws_stage)

    parameters: dict[str, Any] = {
        "DatabaseUrl": {
            "Type": "String",
            "NoEcho": True,
            "Description": "DATABASE_URL: postgresql://user@rds-endpoint:5432/db (the password"
            " is read from DATABASE_PASSWORD_SECRET)",
        },
        "RedisUrl": {
            "Type": "String",
            "NoEcho": True,
            "Description": "REDIS_URL: rediss://elasticache-endpoint:6379/0 (the AUTH token is"
            " read from REDIS_AUTH_SECRET)",
        },
    }
    resources: dict[str, Any] = dict(queues)
    if rest_stage:
        everything = {"ResourcePath": "/*", "HttpMethod": "*", **REST_THROTTLE}
        resources["RestAPI"] = {"Properties": {"MethodSettings": [everything]}}
    if ws_stage:
        resources["WebsocketAPIStage"] = {"Properties": {"DefaultRouteSettings": WS_THROTTLE}}
    in_vpc = False

    for logical_id, resource in base["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        variables: dict[str, Any] = {
            "DATABASE_URL": {"Ref": "DatabaseUrl"},
            "REDIS_URL": {"Ref": "RedisUrl"},
        }
        if ws_stage:
            variables["WS_PUBLIC_URL"] = ws_url
        patch: dict[str, Any] = {"Environment": {"Variables": variables}}
        if str(properties.get("Handler", "")).startswith(WS_HANDLER_PREFIX):
            patch["ReservedConcurrentExecutions"] = WS_RESERVED_CONCURRENCY
        if "VpcConfig" in properties:
            in_vpc = True
            patch["VpcConfig"] = {
                "SubnetIds": {"Ref": "SubnetIds"},
                "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
            }
        depends_on = []
        events: dict[str, Any] = {}
        for event_id, event in (properties.get("Events") or {}).items():
            if event["Type"] != "SQS":
                continue
            name = sqs_event_queue_name(event["Properties"]["Queue"])
            if name not in ids:
                raise ValueError(
                    f"{logical_id} consumes queue {name!r}, which backends/queue_setup.py"
                    " does not define"
                )
            visibility = queues[ids[name]]["Properties"].get(
                "VisibilityTimeout", SQS_DEFAULT_VISIBILITY_S
            )
            timeout = properties["Timeout"]
            if VISIBILITY_PER_FUNCTION_TIMEOUT * timeout > visibility:
                raise ValueError(
                    f"{logical_id}: timeout {timeout}s is too long for queue {name!r} "
                    f"(visibility {visibility}s must be >= {VISIBILITY_PER_FUNCTION_TIMEOUT} x "
                    "the timeout): lower its lambda_timeout or raise VISIBILITY_TIMEOUT_S"
                )
            depends_on.append(ids[name])
            if name == settings.queue.orders_queue_name:
                events[event_id] = {
                    "Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
                }
        if events:
            patch["Events"] = events
        function: dict[str, Any] = {"Properties": patch}
        if depends_on:
            function["DependsOn"] = depends_on
        resources[logical_id] = function

    if ws_stage:
        resources["WebsocketAPIStage"] = {
            "Properties": {
                "DefaultRouteSettings": {
                    "ThrottlingRateLimit": WS_THROTTLING_RATE,
                    "ThrottlingBurstLimit": WS_THROTTLING_BURST,
                }
            }
        }

    if in_vpc:
        parameters["SubnetIds"] = {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Private subnets that reach RDS, ElastiCache and (via NAT) AWS APIs",
        }
        parameters["SecurityGroupIds"] = {
            "Type": "List<AWS::EC2::SecurityGroup::Id>",
            "Description": "Security groups of the functions (allowed into RDS and ElastiCache)",
        }

    outputs: dict[str, Any] = {
        "OrdersQueueUrl": {"Value": {"Ref": QUEUE_LOGICAL_ID}},
        "OrdersQueueArn": {"Value": {"Fn::GetAtt": [QUEUE_LOGICAL_ID, "Arn"]}},
        "OrdersDeadLetterQueueUrl": {"Value": {"Ref": DLQ_LOGICAL_ID}},
    }
    if rest_stage:
        outputs["OrderEngineUrl"] = {
            "Description": "ORDER_ENGINE_URL: the REST base URL (routes are under /api)",
            "Value": _api_url("https", "RestAPI", rest_stage),
        }
    if ws_stage:
        outputs["OrderEngineWsUrl"] = {
            "Description": "ORDER_ENGINE_WS_URL: the WebSocket URL (WS_PUBLIC_URL)",
            "Value": ws_url,
        }
    return {"Parameters": parameters, "Resources": resources, "Outputs": outputs}
