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
  the origins a browser may open it from (the REST API's own, whose dashboard uses it), and
  outputs the demo client is pointed at;
- each function's role policy, naming this stack's queues, WebSocket API, account and region
  (chalice put the policy file's patterns there), and the function names its log group
  ARNs assume (chalice's own, as ``chalice deploy`` names them).

Each function has a role of its own and a policy that allows what it calls and nothing else
(``FUNCTION_ACCESS``), in a file chalice reads itself (``iam_policy_file`` under
``lambda_functions``), so ``chalice deploy`` gets them too: ``python -m infra policy`` writes
them, packaging refuses to run when a committed one is stale.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice.config import Config
from chalice.utils import to_cfn_resource_name

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
# API (order submission) and the worker need. ``$connect`` has a tighter share of both: a
# flood of connects (fake keys or not) is refused before it reaches the handler, and the
# handler's Redis and Postgres look-ups never take the message and disconnect handlers' share.
WS_RESERVED_CONCURRENCY = 20
WS_CONNECT_RESERVED_CONCURRENCY = 10
WS_CONNECT_HANDLER = "app.ws_connect"
WS_HANDLER_PREFIX = "app.ws_"

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
WS_CONNECT_THROTTLE = {"ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 50}

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
    settings = config.from_values(chalice_config(stage, project_dir).environment_variables or {})
    for origin in settings.push.ws_allowed_origins:
        if not ORIGIN.fullmatch(origin):
            raise ValueError(
                f"stage {stage!r}: WS_ALLOWED_ORIGINS holds {origin!r}, not an origin (a"
                " browser sends scheme://host[:port], without a path or a trailing /)"
            )
    return settings


# --- WebSocket origins -----------------------------------------------------------------------

ORIGIN = re.compile(r"https?://[^/\s]+")
# What the stage lists for chalice deploy: the REST API it deployed (another stack's).
EXECUTE_API_ORIGIN = re.compile(r"https://[^./]+\.execute-api\.[^./]+\.amazonaws\.com(\.cn)?")
REST_API_ORIGIN = "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"


def allowed_origins(settings: Settings) -> dict[str, str]:
    """``WS_ALLOWED_ORIGINS`` in the template: the REST API's own origin, since the dashboard
    it serves opens its WebSocket from there, and any other site the stage lists. Not the
    code's default (localhost: local use only), nor an execute-api origin the stage names
    for ``chalice deploy`` (not this stack's API)."""
    local = set(config.default("ws_allowed_origins"))
    others = [
        origin.replace("${", "${!")  # literal in Fn::Sub
        for origin in settings.push.ws_allowed_origins
        if origin not in local and not EXECUTE_API_ORIGIN.fullmatch(origin)
    ]
    return {"Fn::Sub": json.dumps([REST_API_ORIGIN, *others])}


# --- IAM -------------------------------------------------------------------------------------
#
# One role per function, each allowed what that function calls and nothing else. What each
# one calls, read from app.py and chalicelib/ (besides its own log group, traces and VPC
# network interfaces, which every function gets):

ORDERS, DLQ = "orders", "dlq"  # the two queues, by role
DATABASE, REDIS = "database", "redis"  # the two secrets, by what they unlock
# backends/queue.py: send_order, send_replay and dead_letter resolve the queue's URL by name.
SEND = ("sqs:SendMessage", "sqs:GetQueueUrl")
# A queue's event source: Lambda receives and deletes the messages with the function's role.
CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# @connections methods: Notifier.send posts (a failed post queues a replay: SEND on the
# orders queue), Notifier.close deletes.
POST, DELETE = "POST", "DELETE"
BOTH_SECRETS = (DATABASE, REDIS)


@dataclass(frozen=True)
class Access:
    """What one function does in AWS beyond logs, traces and network interfaces."""

    queues: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ORDERS/DLQ -> actions
    connections: tuple[str, ...] = ()  # @connections methods on the stage's WebSocket API
    secrets: tuple[str, ...] = ()  # DATABASE (Postgres), REDIS: read when first connecting


# Keyed by chalice's function name (``lambda_functions`` in .chalice/config.json).
FUNCTION_ACCESS: dict[str, Access] = {
    # The REST routes: orders in, cancels and amendments pushed, readiness pings the queue.
    "api_handler": Access({ORDERS: (*SEND, "sqs:GetQueueAttributes")}, (POST,), BOTH_SECRETS),
    # The authorizer: looks the key up in Postgres, nothing else.
    "api_key": Access(secrets=(DATABASE,)),
    # The worker: consumes the orders queue, delays and re-sends orders (visibility, delayed
    # sends), moves unreadable messages to the DLQ, pushes every status and replay.
    "process_orders": Access(
        {ORDERS: (*CONSUME, *SEND, "sqs:ChangeMessageVisibility"), DLQ: SEND},
        (POST,),
        BOTH_SECRETS,
    ),
    # The DLQ's consumer: fails the orders named, pushes that.
    "record_dead_letters": Access({DLQ: CONSUME, ORDERS: SEND}, (POST,), BOTH_SECRETS),
    # The schedules: re-send or fail orders, push what changed.
    "reap_stale_orders": Access({ORDERS: SEND}, (POST,), BOTH_SECRETS),
    "check_limit_orders": Access({ORDERS: SEND}, (POST,), BOTH_SECRETS),
    # $connect checks the key and queues a replay (posts are refused until it returned).
    "websocket_connect": Access({ORDERS: SEND}, (), BOTH_SECRETS),
    # $default answers on the socket, replays, and closes a socket whose key was revoked.
    "websocket_message": Access({ORDERS: SEND}, (POST, DELETE), BOTH_SECRETS),
    # $disconnect drops the connection's subscriptions, in Redis.
    "websocket_disconnect": Access(secrets=(REDIS,)),
}

QUEUE_SIDS = {ORDERS: "OrdersQueue", DLQ: "DeadLetterQueue"}
WS_API_LOGICAL_ID = "WebsocketAPI"
# wss://<api id>.execute-api.<region>.amazonaws.com/<stage>: what chalice deploy prints.
EXECUTE_API_URL = re.compile(r"^wss://([^./]+)\.execute-api\.([^./]+)\.amazonaws\.com(\.cn)?/")


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the stage, as chalice deploys it."""

    name: str  # chalice's: ``process_orders``
    function_name: str  # the Lambda function's: ``order-engine-dev-process_orders``
    access: Access
    traced: bool
    in_vpc: bool
    policy_file: Path | None  # None when chalice autogenerates the policy


def function_name(app_name: str, stage: str, name: str) -> str:
    """The Lambda function's name, as chalice names it (the REST handler is the app's)."""
    return f"{app_name}-{stage}" if name == "api_handler" else f"{app_name}-{stage}-{name}"


def function_specs(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, FunctionSpec]:
    base = chalice_config(stage, project_dir)
    specs = {}
    for name, access in FUNCTION_ACCESS.items():
        scoped = base.scope(chalice_stage=stage, function_name=name)
        policy_file = None
        if not scoped.autogen_policy:
            if not scoped.iam_policy_file:
                raise ValueError(
                    f"stage {stage!r}: function {name!r} has no iam_policy_file of its own in"
                    " lambda_functions (.chalice/config.json)"
                )
            policy_file = (project_dir / ".chalice" / scoped.iam_policy_file).resolve()
        specs[name] = FunctionSpec(
            name=name,
            function_name=function_name(base.app_name, stage, name),
            access=access,
            traced=bool(scoped.xray_enabled),
            in_vpc=bool(scoped.subnet_ids),
            policy_file=policy_file,
        )
    files = [s.policy_file for s in specs.values() if s.policy_file]
    if len(set(files)) != len(files):
        raise ValueError(f"stage {stage!r}: two functions share an iam_policy_file")
    return specs


@dataclass(frozen=True)
class Arns:
    """How a policy names its resources: patterns in the policy files chalice reads
    (``file_arns``), CloudFormation expressions in the packaged template (``template_arns``)."""

    log_group: Callable[[str], list[Any]]  # function name -> the group, and its streams
    queue: Callable[[str], Any]  # ORDERS/DLQ -> the queue
    connections: Callable[[str], Any]  # method -> the stage's @connections


def queue_arn_pattern(name: str) -> str:
    return f"arn:*:sqs:*:*:{name}"


def websocket_api_of(url: str) -> tuple[str, str]:
    """(API id, region) of a WebSocket API's execute-api URL."""
    match = EXECUTE_API_URL.match(url)
    if match is None:
        raise ValueError(
            f"WS_PUBLIC_URL {url!r} is not an execute-api URL (wss://<api id>.execute-api."
            "<region>.amazonaws.com/<stage>): the policy files scope WebSocket pushes to it"
        )
    return match.group(1), match.group(2)


def file_arns(settings: Settings, ws_stage: str) -> Arns:
    """For ``chalice deploy``: the queues by name, the WebSocket API that ``WS_PUBLIC_URL``
    names (its id is known after the first deploy, like the URL), any account and region."""
    names = {ORDERS: settings.queue.orders_queue_name, DLQ: settings.queue.orders_dlq_name}
    api_id, region = websocket_api_of(settings.push.ws_public_url)

    def log_group(function: str) -> list[Any]:
        group = f"arn:*:logs:*:*:log-group:/aws/lambda/{function}"
        return [group, f"{group}:*"]

    return Arns(
        log_group=log_group,
        queue=lambda q: queue_arn_pattern(names[q]),
        connections=lambda m: (
            f"arn:*:execute-api:{region}:*:{api_id}/{ws_stage}/{m}/@connections/*"
        ),
    )


def template_arns(ws_stage: str) -> Arns:
    """For the packaged template: this stack's queues and WebSocket API, its account and
    region."""
    ids = {ORDERS: QUEUE_LOGICAL_ID, DLQ: DLQ_LOGICAL_ID}

    def here(service: str) -> str:
        return f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}"

    def log_group(function: str) -> list[Any]:
        group = f"{here('logs')}:log-group:/aws/lambda/{function}"
        return [{"Fn::Sub": group}, {"Fn::Sub": f"{group}:*"}]

    def connections(method: str) -> Any:
        api = f"${{{WS_API_LOGICAL_ID}}}/{ws_stage}/{method}/@connections/*"
        return {"Fn::Sub": f"{here('execute-api')}:{api}"}

    return Arns(
        log_group=log_group,
        queue=lambda q: {"Fn::GetAtt": [ids[q], "Arn"]},
        connections=connections,
    )


def _statement(sid: str, actions, resource) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": resource}


def iam_policy(spec: FunctionSpec, settings: Settings, arns: Arns) -> dict[str, Any]:
    """One function's policy: its own log group, traces and network interfaces when it has
    them, and what ``FUNCTION_ACCESS`` says it calls, on those resources only."""
    access = spec.access
    statements = [_statement("Logs", LOGS_ACTIONS, arns.log_group(spec.function_name))]
    if spec.traced:
        statements.append(_statement("Tracing", XRAY_ACTIONS, "*"))
    if spec.in_vpc:
        statements.append(_statement("VpcNetworkInterfaces", VPC_ACTIONS, "*"))
    for queue in (ORDERS, DLQ):
        if queue in access.queues:
            actions = sorted(set(access.queues[queue]))
            statements.append(_statement(QUEUE_SIDS[queue], actions, arns.queue(queue)))
    if access.connections:
        resources = [arns.connections(m) for m in access.connections]
        statements.append(
            _statement("WebSocketConnections", ["execute-api:ManageConnections"], resources)
        )
    ids = {
        DATABASE: settings.storage.database_password_secret,
        REDIS: settings.storage.redis_auth_secret,
    }
    secrets = [ids[s] for s in access.secrets if ids[s]]
    if secrets:
        statements.append(_statement("Secrets", SECRETS_ACTIONS, secrets))
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2) + "\n"


def policy_files(stage: str, project_dir: Path = PROJECT_DIR) -> dict[Path, str]:
    """Each function's policy file (``iam_policy_file``) and what it must hold; nothing when
    chalice autogenerates the stage's policy."""
    specs = function_specs(stage, project_dir)
    if not any(s.policy_file for s in specs.values()):
        return {}
    config = chalice_config(stage, project_dir)
    settings = stage_settings(stage, project_dir)
    # Chalice names the WebSocket API's stage after api_gateway_stage, as the REST API's.
    arns = file_arns(settings, config.api_gateway_stage)
    return {
        s.policy_file: policy_json(iam_policy(s, settings, arns))
        for s in specs.values()
        if s.policy_file
    }


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


def _role_policies(
    base: dict[str, Any], settings: Settings, specs: dict[str, FunctionSpec], ws_stage: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each function's role with its policy naming this stack's resources (chalice put the
    policy file's patterns there), and the function names the log group ARNs assume."""
    by_role = {to_cfn_resource_name(f"{name}_role"): spec for name, spec in specs.items()}
    arns = template_arns(ws_stage or "")
    roles: dict[str, Any] = {}
    names: dict[str, str] = {}
    owners: dict[str, str] = {}
    for logical_id, resource in base["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        role = resource["Properties"].get("Role")
        role_id = role["Fn::GetAtt"][0] if isinstance(role, dict) else None
        spec = by_role.get(role_id)
        if spec is None:
            raise ValueError(
                f"{logical_id} (role {role!r}) is not in infra/render.py FUNCTION_ACCESS:"
                " say what it calls there, and give it its own iam_policy_file"
            )
        if role_id in owners:
            raise ValueError(f"{owners[role_id]} and {logical_id} share the role {role_id}")
        owners[role_id] = logical_id
        if spec.access.connections and not ws_stage:
            raise ValueError(f"{logical_id} pushes to WebSocket connections: no WebSocket API")
        names[logical_id] = spec.function_name
        policy = {
            "PolicyName": f"{role_id}Policy",
            "PolicyDocument": iam_policy(spec, settings, arns),
        }
        roles[role_id] = {"Properties": {"Policies": [policy]}}
    return roles, names


def merge_template(
    base: dict[str, Any], settings: Settings, specs: dict[str, FunctionSpec]
) -> dict[str, Any]:
    """The template merged into ``base`` (what ``chalice package`` generates without it)."""
    queues = queue_resources(settings)
    ids = queue_logical_ids(settings)
    rest_stage = _stage_name(base, "RestAPI")
    ws_stage = _stage_name(base, "WebsocketAPIStage")
    ws_url = _api_url("wss", "WebsocketAPI", ws_stage)
    roles, function_names = _role_policies(base, settings, specs, ws_stage)

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
    resources: dict[str, Any] = {**queues, **roles}
    if rest_stage:
        everything = {"ResourcePath": "/*", "HttpMethod": "*", **REST_THROTTLE}
        resources["RestAPI"] = {"Properties": {"MethodSettings": [everything]}}
    if ws_stage:
        resources["WebsocketAPIStage"] = {
            "Properties": {
                "DefaultRouteSettings": WS_THROTTLE,
                "RouteSettings": {"$connect": WS_CONNECT_THROTTLE},
            }
        }
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
        if ws_stage and rest_stage:
            variables["WS_ALLOWED_ORIGINS"] = allowed_origins(settings)
        patch: dict[str, Any] = {
            "FunctionName": function_names[logical_id],
            "Environment": {"Variables": variables},
        }
        handler = str(properties.get("Handler", ""))
        if handler == WS_CONNECT_HANDLER:
            patch["ReservedConcurrentExecutions"] = WS_CONNECT_RESERVED_CONCURRENCY
        elif handler.startswith(WS_HANDLER_PREFIX):
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
