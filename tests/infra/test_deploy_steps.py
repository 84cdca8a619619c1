"""The ``chalice deploy`` path's two steps (queues before, event source after), against moto,
and the event source step's wait for AWS's mapping states, against a botocore Stubber."""

import io
import zipfile

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from infra import render
from infra.deploy import configure_event_source, create_queues

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # conftest points SQS at its server
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION), boto3.client("lambda", region_name=REGION)


def deploy_worker(lambda_client, queue_arn: str) -> str:
    """What ``chalice deploy`` leaves: the worker and a plain event source mapping."""
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="order-engine-dev-process_orders", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("app.py", "")
    lambda_client.create_function(
        FunctionName="order-engine-dev-process_orders",
        Runtime="python3.11",
        Role=role,
        Handler="app.process_orders",
        Code={"ZipFile": code.getvalue()},
    )
    return lambda_client.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName="order-engine-dev-process_orders", BatchSize=10
    )["UUID"]


def test_create_queues_then_configure_the_event_source(aws):
    sqs, lambda_client = aws
    settings = render.stage_settings("dev")
    urls = create_queues(sqs, "dev")
    attributes = sqs.get_queue_attributes(QueueUrl=urls.queue, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == str(settings.queue.visibility_timeout_s)
    assert urls.dlq.endswith(settings.queue.orders_dlq_name)

    uuid = deploy_worker(lambda_client, attributes["QueueArn"])
    assert configure_event_source(sqs, lambda_client, "dev") == [uuid]
    mapping = lambda_client.get_event_source_mapping(UUID=uuid)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_configure_before_deploy_says_so(aws):
    sqs, lambda_client = aws
    create_queues(sqs, "dev")
    with pytest.raises(RuntimeError, match="chalice deploy"):
        configure_event_source(sqs, lambda_client, "dev")


QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:order-engine-orders"
UUID = "14e0db71-5d35-4eb5-b481-8945cf9d10c2"


@pytest.fixture
def stubbed():
    """SQS and Lambda clients that answer only what a test queues up (no network)."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    sqs = session.client("sqs", endpoint_url="https://sqs.invalid")
    lambda_client = session.client("lambda", endpoint_url="https://lambda.invalid")
    with Stubber(sqs) as sqs_stub, Stubber(lambda_client) as lambda_stub:
        url = "https://sqs.invalid/123456789012/order-engine-orders"
        sqs_stub.add_response("get_queue_url", {"QueueUrl": url})
        sqs_stub.add_response("get_queue_attributes", {"Attributes": {"QueueArn": QUEUE_ARN}})
        lambda_stub.add_response(
            "list_event_source_mappings",
            {"EventSourceMappings": [{"UUID": UUID, "State": "Creating"}]},
            {"EventSourceArn": QUEUE_ARN},
        )
        yield sqs, lambda_client, lambda_stub
        lambda_stub.assert_no_pending_responses()


def answer_state(stub, *states):
    for state in states:
        stub.add_response(
            "get_event_source_mapping", {"UUID": UUID, "State": state}, {"UUID": UUID}
        )


def test_configure_waits_for_the_mapping_to_settle_and_retries_when_in_use(stubbed):
    sqs, lambda_client, stub = stubbed
    update = {"UUID": UUID, "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    answer_state(stub, "Creating", "Enabled")  # just deployed: not updatable yet
    stub.add_client_error(
        "update_event_source_mapping",
        service_error_code="ResourceInUseException",
        http_status_code=400,
        expected_params=update,
    )  # another change slipped in between
    answer_state(stub, "Updating", "Enabled")
    stub.add_response("update_event_source_mapping", {"UUID": UUID, "State": "Updating"}, update)
    answer_state(stub, "Updating", "Enabled")  # returns once the change is applied
    sleeps = []

    assert configure_event_source(sqs, lambda_client, "dev", sleep=sleeps.append) == [UUID]
    assert len(sleeps) == 3  # one poll interval after each transitional state


def test_configure_gives_up_on_a_mapping_that_never_settles(stubbed):
    sqs, lambda_client, stub = stubbed
    answer_state(stub, "Creating")
    with pytest.raises(TimeoutError, match="still Creating"):
        configure_event_source(sqs, lambda_client, "dev", timeout_s=0, sleep=lambda s: None)
