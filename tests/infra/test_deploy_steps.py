"""The ``chalice deploy`` path's two steps (queues before, event source after), against moto."""

import io
import zipfile

import boto3
import pytest
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
    assert attributes["VisibilityTimeout"] == str(settings.visibility_timeout_s)
    assert urls.dlq.endswith(settings.orders_dlq_name)

    uuid = deploy_worker(lambda_client, attributes["QueueArn"])
    assert configure_event_source(sqs, lambda_client, "dev") == [uuid]
    mapping = lambda_client.get_event_source_mapping(UUID=uuid)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": render.WORKER_MAX_CONCURRENCY}


def test_configure_before_deploy_says_so(aws):
    sqs, lambda_client = aws
    create_queues(sqs, "dev")
    with pytest.raises(RuntimeError, match="chalice deploy"):
        configure_event_source(sqs, lambda_client, "dev")
