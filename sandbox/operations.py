"""The stack's operations side: alarms and their topic, VPC flow logs, WAF, the Terraform lock table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stack import Build


# The Terraform state this stack is built from (its S3 backend bucket and key).
_STATE_BUCKET = "{project}-tfstate-{account}"  # bucket names are global: one per account
_STATE_KEY = "{environment}/terraform.tfstate"


def seed(b: Build) -> None:
    for part in (_alarms, _flow_logs, _waf, _terraform_lock):
        part(b)


def _alarm_definitions(b: Build) -> list[tuple[str, str, str, list[dict[str, str]], float]]:
    names, suffix = b.names, b.outputs["alb_arn_suffix"]
    service = [
        {"Name": "ClusterName", "Value": names.ecs_cluster},
        {"Name": "ServiceName", "Value": names.ecs_service},
    ]
    lb = [{"Name": "LoadBalancer", "Value": suffix}]
    db = [{"Name": "DBClusterIdentifier", "Value": names.aurora_cluster}]
    tg = [
        {"Name": "TargetGroup", "Value": b.extra["target_group_arn"].split(":")[-1]},
        {"Name": "LoadBalancer", "Value": suffix},
    ]
    return [
        ("ecs-cpu-high", "AWS/ECS", "CPUUtilization", service, 80.0),
        ("ecs-memory-high", "AWS/ECS", "MemoryUtilization", service, 80.0),
        ("alb-5xx-high", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, 10.0),
        ("alb-elb-5xx-high", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, 10.0),
        ("alb-unhealthy-hosts", "AWS/ApplicationELB", "UnHealthyHostCount", tg, 0.0),
        ("alb-response-time-high", "AWS/ApplicationELB", "TargetResponseTime", lb, 2.0),
        ("rds-cpu-high", "AWS/RDS", "CPUUtilization", db, 80.0),
        ("rds-capacity-high", "AWS/RDS", "ServerlessDatabaseCapacity", db, 3.5),
        ("rds-connections-high", "AWS/RDS", "DatabaseConnections", db, 300.0),
        ("waf-blocked-high", "AWS/WAFV2", "BlockedRequests", [], 500.0),
        (
            "nat-port-allocation-errors",
            "AWS/NATGateway",
            "ErrorPortAllocation",
            [{"Name": "NatGatewayId", "Value": b.outputs["nat_gateway_ids"][0]}],
            0.0,
        ),
    ]


def _alarms(b: Build) -> None:
    sns, sqs, cw = b.c("sns"), b.c("sqs"), b.c("cloudwatch")
    topic = sns.create_topic(Name=f"{b.base}-alarms")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"{b.base}-alarm-sink")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    for suffix, ns, metric, dims, threshold in _alarm_definitions(b):
        cw.put_metric_alarm(
            AlarmName=f"{b.names.alarm_prefix}{suffix}",
            Namespace=ns,
            MetricName=metric,
            Dimensions=dims,
            Statistic="Sum" if "Count" in metric or "Requests" in metric else "Average",
            Period=60,
            EvaluationPeriods=3,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[topic],
            OKActions=[topic],
        )
    b.outputs["alarms_sns_topic_arn"] = topic
    b.extra["subscription_arn"] = sub


def _flow_logs(b: Build) -> None:
    from .stack import trust

    names = b.names
    flow_role = b.c("iam").create_role(
        RoleName=names.flow_logs_role,
        AssumeRolePolicyDocument=trust("vpc-flow-logs.amazonaws.com"),
    )["Role"]["Arn"]
    flow_group = f"{names.flow_logs_log_group_prefix}-{names.environment}/flow-logs"
    b.c("logs").create_log_group(logGroupName=flow_group)
    b.extra["flow_log_ids"] = b.c("ec2").create_flow_logs(
        ResourceIds=[b.outputs["vpc_id"]],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=flow_group,
        DeliverLogsPermissionArn=flow_role,
    )["FlowLogIds"]


def _visibility(metric: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def _waf(b: Build) -> None:
    waf, names = b.c("wafv2"), b.names
    common_metric, rate_metric = f"{b.base}-common-rules", f"{b.base}-rate-limit"
    acl = waf.create_web_acl(
        Name=names.waf_acl,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig=_visibility(names.waf_acl),
        Rules=[
            {
                "Name": "AWSManagedRulesCommonRuleSet",
                "Priority": 1,
                "OverrideAction": {"None": {}},
                "Statement": {
                    "ManagedRuleGroupStatement": {
                        "VendorName": "AWS",
                        "Name": "AWSManagedRulesCommonRuleSet",
                    }
                },
                "VisibilityConfig": _visibility(common_metric),
            },
            {
                "Name": "RateLimit",
                "Priority": 2,
                "Action": {"Block": {}},
                "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}},
                "VisibilityConfig": _visibility(rate_metric),
            },
        ],
    )["Summary"]
    waf.associate_web_acl(WebACLArn=acl["ARN"], ResourceArn=b.outputs["alb_arn"])
    b.outputs["waf_web_acl_arn"] = acl["ARN"]
    b.extra["waf_metrics"] = {"common": common_metric, "rate": rate_metric}


def _terraform_lock(b: Build) -> None:
    dynamodb, names = b.c("dynamodb"), b.names
    lock_table = f"{names.project}-terraform-locks"
    dynamodb.create_table(
        TableName=lock_table,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    bucket = _STATE_BUCKET.format(project=names.project, account=b.extra["account"])
    key = _STATE_KEY.format(environment=names.environment)
    dynamodb.put_item(
        TableName=lock_table,
        Item={"LockID": {"S": f"{bucket}/{key}-md5"}, "Digest": {"S": "0" * 32}},
    )
    b.extra.update(lock_table=lock_table, state_bucket=bucket, state_key=key)


def write_state(stack: Any) -> str:
    """The Terraform state object of the stack (its outputs), in its S3 backend's bucket:
    ``s3://{bucket}/{key}``, which settings can name as OMNI_TERRAFORM_OUTPUTS or _STATE."""
    s3 = stack.client("s3")
    bucket, key = stack.extra["state_bucket"], stack.extra["state_key"]
    kwargs = (
        {}
        if stack.region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": stack.region}}
    )
    s3.create_bucket(Bucket=bucket, **kwargs)
    state = {
        "version": 4,
        "terraform_version": "1.9.5",
        "serial": 42,
        "outputs": {k: {"value": v, "type": "string"} for k, v in stack.outputs.items()},
        "resources": [],
    }
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(state).encode())
    return f"s3://{bucket}/{key}"
