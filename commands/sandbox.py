"""A sandbox of the guide's stack in moto, with one fault per cause in the guide.

Used by ``omni demo`` and by the tests.  :func:`seed` builds the whole stack through boto3 (so
it works against an in-process ``mock_aws`` or a ``ThreadedMotoServer`` alike) and returns the
Terraform outputs the stack would have.  :func:`apply_scenario` then breaks one thing by
changing moto's backend objects, which only works in the process that runs moto.

moto is a ``demo`` extra; this module imports it only when a scenario needs its backends.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .aws import ClientPool
from .names import Names

DB_USER = "omni_app"
DB_PASSWORD = "s3cr3t-Pa55-for-the-sandbox"


@dataclass
class Stack:
    """What :func:`seed` built: Terraform-style outputs plus handles tests and scenarios need."""

    region: str
    names: Names
    outputs: dict[str, Any]
    pool: ClientPool
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    area: str
    apply: Callable[[Stack], None]


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, summary: str, area: str
) -> Callable[[Callable[[Stack], None]], Callable[[Stack], None]]:
    def register(fn: Callable[[Stack], None]) -> Callable[[Stack], None]:
        SCENARIOS[name] = Scenario(name, summary, area, fn)
        return fn

    return register


def apply_scenario(name: str, stack: Stack) -> Scenario:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    chosen = SCENARIOS[name]
    chosen.apply(stack)
    return chosen


# ---------------------------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------------------------


def seed(pool: ClientPool, names: Names, region: str, *, now: datetime | None = None) -> Stack:
    """Build the whole stack of the guide in the AWS that ``pool`` talks to."""
    now = now or datetime.now(UTC)
    install_moto_extensions()
    from moto.moto_api import state_manager

    # describe_tasks would otherwise advance a task's status on every call
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})

    def c(service: str) -> Any:
        return pool.client(service, region)

    ec2, elbv2, ecs, rds = c("ec2"), c("elbv2"), c("ecs"), c("rds")
    base = f"{names.project}-{names.environment}"
    azs = [f"{region}a", f"{region}b"]

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})

    def subnet(cidr: str, az: str, tier: str) -> str:
        sid: str = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"][
            "SubnetId"
        ]
        ec2.create_tags(
            Resources=[sid],
            Tags=[{"Key": "Name", "Value": f"{base}-{tier}-{az}"}, {"Key": "Tier", "Value": tier}],
        )
        return sid

    public = [subnet(f"10.0.{i}.0/24", az, "public") for i, az in enumerate(azs)]
    private_app = [subnet(f"10.0.{10 + i}.0/24", az, "private-app") for i, az in enumerate(azs)]
    private_db = [subnet(f"10.0.{20 + i}.0/24", az, "private-db") for i, az in enumerate(azs)]

    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for sid in public:
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=sid)

    nat_ids, private_rts = [], []
    for i, sid in enumerate(public):
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=sid, AllocationId=eip)["NatGateway"]["NatGatewayId"]
        nat_ids.append(nat)
        rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=private_app[i])
        ec2.associate_route_table(RouteTableId=rt, SubnetId=private_db[i])
        private_rts.append(rt)

    def sg(name: str, desc: str) -> str:
        gid: str = ec2.create_security_group(GroupName=name, Description=desc, VpcId=vpc)["GroupId"]
        return gid

    alb_sg = sg(f"{base}-alb", "ALB")
    ecs_sg = sg(f"{base}-ecs", "ECS tasks")
    aurora_sg = sg(f"{base}-aurora", "Aurora")
    ec2.authorize_security_group_ingress(
        GroupId=alb_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            for p in (80, 443)
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=ecs_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 3000,
                "ToPort": 3000,
                "UserIdGroupPairs": [{"GroupId": alb_sg}],
            }
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=aurora_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": ecs_sg}],
            }
        ],
    )

    # ALB, target group, listener
    lb = elbv2.create_load_balancer(
        Name=f"{base}-alb"[:32],
        Subnets=public,
        SecurityGroups=[alb_sg],
        Scheme="internet-facing",
        Type="application",
    )["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name=f"{base}-api"[:32],
        Protocol="HTTP",
        Port=3000,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/health",
        HealthCheckProtocol="HTTP",
    )["TargetGroups"][0]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    alb_suffix = lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]

    # IAM + ECR
    iam = c("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = iam.create_role(
        RoleName=names.task_execution_role, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=names.task_execution_role,
        PolicyName="ECSTaskExecutionPolicy",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "ecr:GetAuthorizationToken",
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:GetDownloadUrlForLayer",
                            "ecr:BatchGetImage",
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "secretsmanager:GetSecretValue",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    logs_policy = iam.create_policy(
        PolicyName=f"{base}-ecs-task-execution-logs",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=names.task_execution_role, PolicyArn=logs_policy)
    c("ecr").create_repository(repositoryName=names.ecr_repository)

    # Logs
    logs = c("logs")
    logs.create_log_group(logGroupName=names.log_group)
    logs.create_log_stream(logGroupName=names.log_group, logStreamName="api/api/healthy")
    logs.put_log_events(
        logGroupName=names.log_group,
        logStreamName="api/api/healthy",
        logEvents=[
            {
                "timestamp": int((now - timedelta(minutes=5)).timestamp() * 1000),
                "message": "INFO server listening on :3000",
            }
        ],
    )

    # ECS
    ecs.create_cluster(clusterName=names.ecs_cluster)
    account = c("sts").get_caller_identity()["Account"]
    repo_uri = f"{account}.dkr.ecr.{region}.amazonaws.com/{names.ecr_repository}"
    td = ecs.register_task_definition(
        family=names.ecs_service,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        executionRoleArn=role_arn,
        containerDefinitions=[
            {
                "name": "api",
                "image": f"{repo_uri}:latest",
                "essential": True,
                "cpu": 512,
                "memory": 1024,
                "portMappings": [{"containerPort": 3000, "protocol": "tcp"}],
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost:3000/health || exit 1"],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 60,
                },
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": names.log_group,
                        "awslogs-region": region,
                        "awslogs-stream-prefix": "api",
                    },
                },
            }
        ],
    )["taskDefinition"]
    ecs.create_service(
        cluster=names.ecs_cluster,
        serviceName=names.ecs_service,
        taskDefinition=td["taskDefinitionArn"],
        desiredCount=2,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": private_app,
                "securityGroups": [ecs_sg],
                "assignPublicIp": "DISABLED",
            }
        },
        loadBalancers=[
            {"targetGroupArn": tg["TargetGroupArn"], "containerName": "api", "containerPort": 3000}
        ],
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
    )
    # moto leaves runningCount at 0 after create_service; update_service makes it = desired
    ecs.update_service(cluster=names.ecs_cluster, service=names.ecs_service, desiredCount=2)

    # Aurora Serverless v2
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"{base}-db", DBSubnetGroupDescription="db", SubnetIds=private_db
    )
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=names.aurora_cluster,
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="omni_admin",
        MasterUserPassword=DB_PASSWORD,
        DatabaseName=names.project.replace("-", "_"),
        DBSubnetGroupName=f"{base}-db",
        VpcSecurityGroupIds=[aurora_sg],
        Port=5432,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4.0},
    )["DBCluster"]
    rds.create_db_instance(
        DBInstanceIdentifier=f"{names.aurora_cluster}-1",
        DBClusterIdentifier=names.aurora_cluster,
        DBInstanceClass="db.serverless",
        Engine="aurora-postgresql",
    )
    writer, reader = cluster["Endpoint"], cluster["ReaderEndpoint"]

    secrets = c("secretsmanager")
    db_url = f"postgresql://{DB_USER}:{DB_PASSWORD}@{writer}:5432/{names.project}"
    secrets.create_secret(
        Name=f"{names.project}/{names.environment}/database-url", SecretString=db_url
    )

    # SNS + alarms
    sns, sqs, cw = c("sns"), c("sqs"), c("cloudwatch")
    topic = sns.create_topic(Name=f"{base}-alarms")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"{base}-alarm-sink")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    cluster_dim = [
        {"Name": "ClusterName", "Value": names.ecs_cluster},
        {"Name": "ServiceName", "Value": names.ecs_service},
    ]
    alarm_defs = [
        ("ecs-cpu-high", "AWS/ECS", "CPUUtilization", cluster_dim, 80.0),
        ("ecs-memory-high", "AWS/ECS", "MemoryUtilization", cluster_dim, 80.0),
        (
            "alb-5xx-high",
            "AWS/ApplicationELB",
            "HTTPCode_Target_5XX_Count",
            [{"Name": "LoadBalancer", "Value": alb_suffix}],
            10.0,
        ),
        (
            "alb-unhealthy-hosts",
            "AWS/ApplicationELB",
            "UnHealthyHostCount",
            [
                {"Name": "TargetGroup", "Value": tg["TargetGroupArn"].split(":")[-1]},
                {"Name": "LoadBalancer", "Value": alb_suffix},
            ],
            0.0,
        ),
        (
            "alb-response-time-high",
            "AWS/ApplicationELB",
            "TargetResponseTime",
            [{"Name": "LoadBalancer", "Value": alb_suffix}],
            2.0,
        ),
        (
            "rds-cpu-high",
            "AWS/RDS",
            "CPUUtilization",
            [{"Name": "DBClusterIdentifier", "Value": names.aurora_cluster}],
            80.0,
        ),
        (
            "rds-capacity-high",
            "AWS/RDS",
            "ServerlessDatabaseCapacity",
            [{"Name": "DBClusterIdentifier", "Value": names.aurora_cluster}],
            3.5,
        ),
        (
            "rds-connections-high",
            "AWS/RDS",
            "DatabaseConnections",
            [{"Name": "DBClusterIdentifier", "Value": names.aurora_cluster}],
            300.0,
        ),
    ]
    for suffix, ns, metric, dims, threshold in alarm_defs:
        cw.put_metric_alarm(
            AlarmName=f"{names.alarm_prefix}{suffix}",
            Namespace=ns,
            MetricName=metric,
            Dimensions=dims,
            Statistic="Average",
            Period=60,
            EvaluationPeriods=3,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[topic],
            OKActions=[topic],
        )

    # ECR image, registered targets, flow logs, WAF, the Terraform lock table
    c("ecr").put_image(
        repositoryName=names.ecr_repository,
        imageTag="latest",
        imageManifest=json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "digest": "sha256:" + "a" * 64,
                    "size": 1,
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                },
                "layers": [],
            }
        ),
    )
    elbv2.register_targets(
        TargetGroupArn=tg["TargetGroupArn"],
        Targets=[{"Id": f"10.0.{10 + i}.25", "Port": 3000} for i in range(len(private_app))],
    )
    flow_role = iam.create_role(
        RoleName=names.flow_logs_role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    flow_group = f"{names.flow_logs_log_group_prefix}-{names.environment}/flow-logs"
    logs.create_log_group(logGroupName=flow_group)
    flow_log_ids = ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=flow_group,
        DeliverLogsPermissionArn=flow_role,
    )["FlowLogIds"]
    waf = c("wafv2")
    common_metric, rate_metric = f"{base}-common-rules", f"{base}-rate-limit"
    acl = waf.create_web_acl(
        Name=names.waf_acl,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig={
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": names.waf_acl,
        },
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
                "VisibilityConfig": {
                    "SampledRequestsEnabled": True,
                    "CloudWatchMetricsEnabled": True,
                    "MetricName": common_metric,
                },
            },
            {
                "Name": "RateLimit",
                "Priority": 2,
                "Action": {"Block": {}},
                "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}},
                "VisibilityConfig": {
                    "SampledRequestsEnabled": True,
                    "CloudWatchMetricsEnabled": True,
                    "MetricName": rate_metric,
                },
            },
        ],
    )["Summary"]
    waf.associate_web_acl(WebACLArn=acl["ARN"], ResourceArn=lb["LoadBalancerArn"])
    dynamodb = c("dynamodb")
    lock_table = f"{names.project}-terraform-locks"
    dynamodb.create_table(
        TableName=lock_table,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(
        TableName=lock_table,
        Item={
            "LockID": {"S": f"{names.project}-tfstate/{names.environment}/terraform.tfstate-md5"},
            "Digest": {"S": "0" * 32},
        },
    )

    stack = Stack(
        region=region,
        names=names,
        pool=pool,
        outputs={
            "vpc_id": vpc,
            "private_app_subnet_ids": private_app,
            "public_subnet_ids": public,
            "alb_arn": lb["LoadBalancerArn"],
            "alb_arn_suffix": alb_suffix,
            "alb_dns_name": lb["DNSName"],
            "alb_security_group_id": alb_sg,
            "ecs_security_group_id": ecs_sg,
            "aurora_security_group_id": aurora_sg,
            "aurora_cluster_endpoint": writer,
            "nat_gateway_ids": nat_ids,
            "alarms_sns_topic_arn": topic,
            "waf_web_acl_arn": acl["ARN"],
        },
        extra={
            "account": account,
            "reader_endpoint": reader,
            "target_group_arn": tg["TargetGroupArn"],
            "task_definition_arn": td["taskDefinitionArn"],
            "private_route_tables": private_rts,
            "subscription_arn": sub,
            "db_url_secret": f"{names.project}/{names.environment}/database-url",
            "flow_log_ids": flow_log_ids,
            "lock_table": lock_table,
            "waf_metrics": {"common": common_metric, "rate": rate_metric},
            "service_key": f"{names.ecs_cluster}:{names.ecs_service}",
            "now": now,
        },
    )
    put_healthy_metrics(pool, stack)
    return stack


def put_metrics(
    pool: ClientPool,
    stack: Stack,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    values: list[float],
    unit: str = "None",
) -> None:
    """One datapoint a minute, the last value the newest, ending at the stack's 'now'."""
    now: datetime = stack.extra["now"]
    cw = pool.client("cloudwatch", stack.region)
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    data = [
        {
            "MetricName": metric,
            "Dimensions": dims,
            "Timestamp": now - timedelta(minutes=len(values) - i),
            "Value": float(v),
            "Unit": unit,
        }
        for i, v in enumerate(values)
    ]
    for start in range(0, len(data), 500):
        cw.put_metric_data(Namespace=namespace, MetricData=data[start : start + 500])


def put_healthy_metrics(pool: ClientPool, stack: Stack) -> None:
    rnd = random.Random(7)
    n = stack.names
    db = {"DBClusterIdentifier": n.aurora_cluster}
    put_metrics(
        pool,
        stack,
        "AWS/RDS",
        "ServerlessDatabaseCapacity",
        db,
        [round(1 + rnd.random(), 1) for _ in range(60)],
    )
    put_metrics(
        pool,
        stack,
        "AWS/RDS",
        "CPUUtilization",
        db,
        [20 + rnd.random() * 15 for _ in range(60)],
        "Percent",
    )
    put_metrics(
        pool,
        stack,
        "AWS/RDS",
        "DatabaseConnections",
        db,
        [40 + rnd.randint(0, 20) for _ in range(60)],
        "Count",
    )
    svc = {"ClusterName": n.ecs_cluster, "ServiceName": n.ecs_service}
    cpu = [25 + rnd.random() * 20 for _ in range(60)]
    put_metrics(pool, stack, "AWS/ECS", "CPUUtilization", svc, cpu, "Percent")
    mem = [40 + rnd.random() * 15 for _ in range(60)]
    put_metrics(pool, stack, "AWS/ECS", "MemoryUtilization", svc, mem, "Percent")
    alb = {"LoadBalancer": stack.outputs["alb_arn_suffix"]}
    rt = [0.08 + rnd.random() * 0.1 for _ in range(60)]
    put_metrics(pool, stack, "AWS/ApplicationELB", "TargetResponseTime", alb, rt, "Seconds")
    for metric in stack.extra["waf_metrics"].values():
        dims = {"WebACL": n.waf_acl, "Region": stack.region, "Rule": metric}
        blocked = [float(rnd.random() < 0.2) for _ in range(60)]
        put_metrics(pool, stack, "AWS/WAFV2", "BlockedRequests", dims, blocked, "Count")


# ---------------------------------------------------------------------------------------------
# scenarios: one per cause in the guide
# ---------------------------------------------------------------------------------------------


SAMPLED_REQUESTS: dict[tuple[str, str], list[dict[str, Any]]] = {}
_EXTENDED = False


def install_moto_extensions() -> None:
    """Teach moto what it lacks for the guide: sampled WAF requests, blackhole routes.

    ``wafv2.get_sampled_requests`` answers from :data:`SAMPLED_REQUESTS`; a route to a NAT
    gateway that failed or was deleted reports ``blackhole``, as AWS does.
    """
    global _EXTENDED
    if _EXTENDED:
        return
    from moto.ec2.models.route_tables import Route
    from moto.wafv2.responses import WAFV2Response

    def get_sampled_requests(self: Any) -> Any:
        body = json.loads(self.body or "{}")
        samples = SAMPLED_REQUESTS.get(
            (body.get("WebAclArn", ""), body.get("RuleMetricName", "")), []
        )
        window = body.get("TimeWindow", {})
        return (
            200,
            {"Content-Type": "application/x-amz-json-1.1"},
            json.dumps(
                {
                    "SampledRequests": samples[: int(body.get("MaxItems", 100))],
                    "PopulationSize": len(samples),
                    "TimeWindow": window,
                }
            ),
        )

    def state(self: Any) -> str:
        nat = getattr(self, "nat_gateway", None)
        if getattr(self, "_omni_blackhole", False) or (
            nat is not None and getattr(nat, "state", "available") in ("failed", "deleted")
        ):
            return "blackhole"
        return "active"

    WAFV2Response.get_sampled_requests = get_sampled_requests  # type: ignore[attr-defined]
    Route.state = property(state)  # type: ignore[assignment,method-assign]
    _EXTENDED = True


def _backend(service: str, stack: Stack) -> Any:
    import moto.backends

    backends: Any = moto.backends.get_backend(service)  # type: ignore[call-overload]
    return backends[stack.extra["account"]][stack.region]


@scenario("healthy", "Everything is fine (no fault).", "all")
def _healthy(stack: Stack) -> None:
    return None


@scenario(
    "aurora-stopped", "The Aurora cluster is stopped (guide: Aurora Cluster Stopped/Paused).", "db"
)
def _aurora_stopped(stack: Stack) -> None:
    _backend("rds", stack).clusters[stack.names.aurora_cluster].status = "stopped"


@scenario(
    "db-sg-missing",
    "Aurora's security group lost its 5432 rule from ECS "
    "(guide: Security Group Missing Ingress Rule).",
    "db",
)
def _db_sg_missing(stack: Stack) -> None:
    ec2 = _backend("ec2", stack)
    group = ec2.get_security_group_from_id(stack.outputs["aurora_security_group_id"])
    group.ingress_rules = []


@scenario(
    "db-reader-endpoint",
    "The app's DB URL points at the reader endpoint (guide: Wrong Database Endpoint).",
    "db",
)
def _db_reader(stack: Stack) -> None:
    url = f"postgresql://{DB_USER}:{DB_PASSWORD}@{stack.extra['reader_endpoint']}:5432/{stack.names.project}"
    stack.pool.client("secretsmanager", stack.region).put_secret_value(
        SecretId=stack.extra["db_url_secret"], SecretString=url
    )


def replace_metric(
    stack: Stack,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    values: list[float],
    unit: str = "None",
) -> None:
    """Replace a metric's healthy series with ``values`` (moto averages one minute's points)."""
    cw = _backend("cloudwatch", stack)
    cw.metric_data = [
        md
        for md in cw.metric_data
        if not (getattr(md, "namespace", None) == namespace and getattr(md, "name", None) == metric)
    ]
    put_metrics(stack.pool, stack, namespace, metric, dimensions, values, unit)


def _db_metrics(stack: Stack, metric: str, values: list[float], unit: str = "None") -> None:
    replace_metric(
        stack, "AWS/RDS", metric, {"DBClusterIdentifier": stack.names.aurora_cluster}, values, unit
    )


@scenario(
    "db-capacity-pinned",
    "Aurora Serverless v2 pinned at max ACU with high CPU (guide: Increase Aurora Capacity).",
    "db",
)
def _db_capacity(stack: Stack) -> None:
    _db_metrics(stack, "ServerlessDatabaseCapacity", [1.5] * 40 + [4.0] * 20)


@scenario(
    "db-cpu-high",
    "Aurora CPU above 90% for the last minutes (guide: High database CPU utilization).",
    "db",
)
def _db_cpu(stack: Stack) -> None:
    _db_metrics(stack, "CPUUtilization", [30.0] * 50 + [96.0] * 10, "Percent")


@scenario(
    "db-connections-exhausted",
    "Connections near 90 per ACU at max capacity (guide: Check Connection Pool Settings).",
    "db",
)
def _db_connections(stack: Stack) -> None:
    _db_metrics(stack, "DatabaseConnections", [60.0] * 50 + [355.0] * 10, "Count")


# --- ECS -------------------------------------------------------------------------------------


def _service(stack: Stack) -> Any:
    return _backend("ecs", stack).services[stack.extra["service_key"]]


def _stop_tasks(
    stack: Stack,
    count: int,
    *,
    stop_code: str,
    reason: str,
    exit_code: int | None,
    container_reason: str = "",
) -> None:
    ecs = stack.pool.client("ecs", stack.region)
    n = stack.names
    now: datetime = stack.extra["now"]
    response = ecs.run_task(
        cluster=n.ecs_cluster,
        taskDefinition=stack.extra["task_definition_arn"],
        count=count,
        launchType="FARGATE",
        group=f"service:{n.ecs_service}",
        startedBy=f"ecs-svc/{n.ecs_service}",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": stack.outputs["private_app_subnet_ids"],
                "securityGroups": [stack.outputs["ecs_security_group_id"]],
            }
        },
    )
    backend = _backend("ecs", stack)
    for i, task in enumerate(response["tasks"]):
        t = next(
            tasks[task["taskArn"]] for tasks in backend.tasks.values() if task["taskArn"] in tasks
        )
        t.desired_status = "STOPPED"
        t.last_status = "STOPPED"
        t.stop_code = stop_code
        t.stopped_reason = reason
        t.stopped_at = now - timedelta(minutes=3 + 7 * i)
        t.stopping_at = t.stopped_at
        for c in t.containers:
            c.last_status = "STOPPED"
            if exit_code is not None:
                c.exitCode = exit_code
            c.reason = container_reason


def _log_lines(stack: Stack, lines: list[str]) -> None:
    logs = stack.pool.client("logs", stack.region)
    now: datetime = stack.extra["now"]
    stream = f"api/api/{random.Random(len(lines)).randrange(16**8):08x}"
    logs.create_log_stream(logGroupName=stack.names.log_group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=stack.names.log_group,
        logStreamName=stream,
        logEvents=[
            {
                # spread over the last 29 minutes: a minute clear of the checks' 30-minute
                # window, which starts at the current minute and so moves when a minute turns
                "timestamp": int(
                    (now - timedelta(seconds=29 * 60 * (len(lines) - i) / len(lines))).timestamp()
                    * 1000
                ),
                "message": m,
            }
            for i, m in enumerate(lines)
        ],
    )


def _ecs_metric(stack: Stack, metric: str, values: list[float]) -> None:
    n = stack.names
    replace_metric(
        stack,
        "AWS/ECS",
        metric,
        {"ClusterName": n.ecs_cluster, "ServiceName": n.ecs_service},
        values,
        "Percent",
    )


@scenario(
    "ecs-oom",
    "Tasks killed out of memory, exit 137 (guide: Out of Memory / Insufficient CPU/Memory).",
    "ecs",
)
def _ecs_oom(stack: Stack) -> None:
    _stop_tasks(
        stack,
        4,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=137,
        container_reason="OutOfMemoryError: Container killed due to memory usage",
    )
    _ecs_metric(stack, "MemoryUtilization", [60.0] * 45 + [99.5] * 15)


@scenario(
    "ecs-image-pull",
    "The image tag is gone from ECR; tasks cannot pull it (guide: Image Pull Error).",
    "ecs",
)
def _ecs_image_pull(stack: Stack) -> None:
    stack.pool.client("ecr", stack.region).batch_delete_image(
        repositoryName=stack.names.ecr_repository, imageIds=[{"imageTag": "latest"}]
    )
    _stop_tasks(
        stack,
        2,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: pull image manifest has been retried 5 time(s): manifest unknown",
        exit_code=None,
    )


@scenario(
    "ecs-execution-role",
    "The task execution role lost its ECR permissions (guide: verify task execution role).",
    "ecs",
)
def _ecs_execution_role(stack: Stack) -> None:
    stack.pool.client("iam", stack.region).delete_role_policy(
        RoleName=stack.names.task_execution_role, PolicyName="ECSTaskExecutionPolicy"
    )


@scenario(
    "ecs-subnet-ips",
    "The private app subnets are out of IP addresses (guide: Subnet IP Exhaustion).",
    "ecs",
)
def _ecs_subnet_ips(stack: Stack) -> None:
    ec2 = _backend("ec2", stack)
    for sid in stack.outputs["private_app_subnet_ids"]:
        s = ec2.get_subnet(sid)
        s._available_ip_addresses -= int(s.available_ip_address_count)
    _stop_tasks(
        stack,
        1,
        stop_code="TaskFailedToStart",
        reason="ResourceInitializationError: unable to assign ENI: insufficient free addresses in subnet",
        exit_code=None,
    )


@scenario(
    "ecs-health-check",
    "Tasks stopped by failing container health checks (guide: Failed Health Checks).",
    "ecs",
)
def _ecs_health(stack: Stack) -> None:
    _stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Task failed container health checks",
        exit_code=None,
    )


@scenario(
    "ecs-app-crash",
    "The application crashes on start with stack traces (guide: Application Crashes).",
    "ecs",
)
def _ecs_crash(stack: Stack) -> None:
    _stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=1,
    )
    _log_lines(
        stack,
        [
            f"ERROR Unhandled exception: TypeError: Cannot read properties of undefined (reading 'id') #{i}"
            for i in range(25)
        ],
    )


@scenario(
    "ecs-tasks-not-running",
    "0/2 tasks running; the service cannot place tasks (guide: ECS Tasks Failing to Start).",
    "ecs",
)
def _ecs_not_running(stack: Stack) -> None:
    svc = _service(stack)
    svc.running_count = 0
    now: datetime = stack.extra["now"]
    svc.events.insert(
        0,
        {
            "id": "e1",
            "createdAt": now - timedelta(minutes=2),
            "message": f"(service {stack.names.ecs_service}) was unable to place a task because no container instance met all of its requirements.",
        },
    )
    svc.events.insert(
        0,
        {
            "id": "e2",
            "createdAt": now - timedelta(minutes=1),
            "message": f"(service {stack.names.ecs_service}) failed to launch a task with (error ECS was unable to assume the role).",
        },
    )


# --- ALB -------------------------------------------------------------------------------------


@scenario(
    "alb-targets-unhealthy",
    "Every target fails the health check with 502 (guide: All Targets Unhealthy).",
    "alb",
)
def _alb_unhealthy(stack: Stack) -> None:
    from moto.elbv2.models import FakeHealthStatus

    tg = _backend("elbv2", stack).target_groups[stack.extra["target_group_arn"]]
    tg.health_for = lambda target, ec2_backend: FakeHealthStatus(
        target["Id"],
        target.get("Port", tg.port),
        tg.health_check_port,
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [502]",
    )


@scenario(
    "alb-sg-missing",
    "The ECS security group no longer admits the ALB (guide: Security Group Misconfiguration).",
    "alb",
)
def _alb_sg(stack: Stack) -> None:
    ec2 = stack.pool.client("ec2", stack.region)
    ec2.revoke_security_group_ingress(
        GroupId=stack.outputs["ecs_security_group_id"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 3000,
                "ToPort": 3000,
                "UserIdGroupPairs": [{"GroupId": stack.outputs["alb_security_group_id"]}],
            }
        ],
    )


@scenario(
    "alb-idle-timeout",
    "Responses take almost the 60 s idle timeout (guide: Connection Timeout).",
    "alb",
)
def _alb_idle(stack: Stack) -> None:
    replace_metric(
        stack,
        "AWS/ApplicationELB",
        "TargetResponseTime",
        {"LoadBalancer": stack.outputs["alb_arn_suffix"]},
        [0.2] * 50 + [58.0] * 10,
        "Seconds",
    )


@scenario(
    "alb-no-igw",
    "The internet gateway was detached from the VPC (guide: No Internet Gateway).",
    "alb",
)
def _alb_igw(stack: Stack) -> None:
    ec2 = stack.pool.client("ec2", stack.region)
    igw = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [stack.outputs["vpc_id"]]}]
    )["InternetGateways"][0]
    ec2.detach_internet_gateway(
        InternetGatewayId=igw["InternetGatewayId"], VpcId=stack.outputs["vpc_id"]
    )


@scenario(
    "alb-listener-closed",
    "The ALB security group no longer allows port 80 (guide: check security group allows inbound).",
    "alb",
)
def _alb_closed(stack: Stack) -> None:
    stack.pool.client("ec2", stack.region).revoke_security_group_ingress(
        GroupId=stack.outputs["alb_security_group_id"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 80,
                "ToPort": 80,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )


# --- network ---------------------------------------------------------------------------------


@scenario(
    "nat-failed",
    "A NAT gateway failed; private routes point at it (guide: NAT Gateway Deleted or Failed).",
    "network",
)
def _nat_failed(stack: Stack) -> None:
    ng = _backend("ec2", stack).nat_gateways[stack.outputs["nat_gateway_ids"][0]]
    ng.state = "failed"
    ng.failure_code = "Gateway.NotAttached"
    ng.failure_message = "Network vpc is not attached to any internet gateway"


@scenario(
    "route-blackhole",
    "A private route table's default route is a blackhole (guide: Route Table Misconfiguration).",
    "network",
)
def _route_blackhole(stack: Stack) -> None:
    table = _backend("ec2", stack).route_tables[stack.extra["private_route_tables"][0]]
    routes = table.routes.values() if isinstance(table.routes, dict) else table.routes
    for route in routes:
        if route.destination_cidr_block == "0.0.0.0/0":
            route._omni_blackhole = True


@scenario(
    "flow-logs-failing",
    "VPC flow logs stopped delivering (guide: VPC Flow Logs Not Capturing Traffic).",
    "network",
)
def _flow_logs(stack: Stack) -> None:
    f = _backend("ec2", stack).flow_logs[stack.extra["flow_log_ids"][0]]
    f.deliver_logs_status = "FAILED"
    f.deliver_logs_error_message = "Access error"


# --- WAF -------------------------------------------------------------------------------------


def _waf_blocks(stack: Stack, metric: str, values: list[float]) -> None:
    n = stack.names
    replace_metric(
        stack,
        "AWS/WAFV2",
        "BlockedRequests",
        {"WebACL": n.waf_acl, "Region": stack.region, "Rule": metric},
        values,
        "Count",
    )


def _samples(stack: Stack, metric: str, rule: str, requests: list[tuple[str, str]]) -> None:
    now: datetime = stack.extra["now"]
    SAMPLED_REQUESTS[(stack.outputs["waf_web_acl_arn"], metric)] = [
        {
            "Request": {
                "ClientIP": ip,
                "Country": "US",
                "URI": uri,
                "Method": "POST",
                "HTTPVersion": "HTTP/2.0",
                "Headers": [],
            },
            "Weight": 1,
            "Timestamp": (now - timedelta(seconds=20 * i)).timestamp(),
            "Action": "BLOCK",
            "RuleNameWithinRuleGroup": rule,
        }
        for i, (ip, uri) in enumerate(requests)
    ]


@scenario(
    "waf-rate-limit",
    "The rate-based rule blocks a busy legitimate client (guide: Rate Limiting Too Aggressive).",
    "waf",
)
def _waf_rate(stack: Stack) -> None:
    metric = stack.extra["waf_metrics"]["rate"]
    _waf_blocks(stack, metric, [0.0] * 11 + [1800.0])
    _samples(
        stack,
        metric,
        "RateLimit",
        [("203.0.113.10", "/api/v1/sessions")] * 60 + [("198.51.100.7", "/api/v1/patients")] * 5,
    )


@scenario(
    "waf-false-positive",
    "A managed rule blocks valid uploads (guide: False Positive from Managed Rule).",
    "waf",
)
def _waf_fp(stack: Stack) -> None:
    metric = stack.extra["waf_metrics"]["common"]
    _waf_blocks(stack, metric, [2.0] * 11 + [400.0])
    _samples(
        stack,
        metric,
        "SizeRestrictions_BODY",
        [(f"198.51.100.{i % 40}", "/api/v1/documents/upload") for i in range(80)],
    )


# --- perf ------------------------------------------------------------------------------------


@scenario(
    "perf-slow-responses",
    "Responses take seconds; the tasks are CPU-bound (guide: High Response Times).",
    "perf",
)
def _perf_slow(stack: Stack) -> None:
    replace_metric(
        stack,
        "AWS/ApplicationELB",
        "TargetResponseTime",
        {"LoadBalancer": stack.outputs["alb_arn_suffix"]},
        [0.2] * 50 + [4.5] * 10,
        "Seconds",
    )
    _ecs_metric(stack, "CPUUtilization", [40.0] * 50 + [96.0] * 10)


# --- deploy ----------------------------------------------------------------------------------


@scenario(
    "deploy-state-lock",
    "A Terraform apply died and left its state lock (guide: State Lock Error).",
    "deploy",
)
def _deploy_lock(stack: Stack) -> None:
    now: datetime = stack.extra["now"]
    info = {
        "ID": "9db590f1-b6fe-c5f2-2678-8804f089deba",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "alice@build-runner-7",
        "Version": "1.9.5",
        "Created": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "Path": f"{stack.names.project}-tfstate/{stack.names.environment}/terraform.tfstate",
    }
    stack.pool.client("dynamodb", stack.region).put_item(
        TableName=stack.extra["lock_table"],
        Item={"LockID": {"S": info["Path"]}, "Info": {"S": json.dumps(info)}},
    )


@scenario(
    "deploy-rollout-failed",
    "The last ECS deployment failed and the circuit breaker rolled it back.",
    "deploy",
)
def _deploy_rollout(stack: Stack) -> None:
    svc = _service(stack)
    svc.deployments[0]["rolloutState"] = "FAILED"
    svc.deployments[0]["rolloutStateReason"] = (
        "ECS deployment circuit breaker: tasks failed to start."
    )
    svc.deployments[0]["failedTasks"] = 5


# --- alarms ----------------------------------------------------------------------------------


@scenario(
    "alarms-pending-subscription",
    "The alarm topic's only subscription was never confirmed (guide: Missing Alarm Notifications).",
    "alarms",
)
def _alarms_pending(stack: Stack) -> None:
    sub = _backend("sns", stack).subscriptions[stack.extra["subscription_arn"]]
    sub.arn = "PendingConfirmation"
    sub.attributes["PendingConfirmation"] = "true"


@scenario(
    "alarms-muted",
    "An alarm was muted during an incident and never re-enabled (guide: temporarily disable alarm).",
    "alarms",
)
def _alarms_muted(stack: Stack) -> None:
    stack.pool.client("cloudwatch", stack.region).disable_alarm_actions(
        AlarmNames=[f"{stack.names.alarm_prefix}ecs-cpu-high"]
    )


@scenario("alarms-firing", "The ALB 5XX alarm is firing.", "alarms")
def _alarms_firing(stack: Stack) -> None:
    stack.pool.client("cloudwatch", stack.region).set_alarm_state(
        AlarmName=f"{stack.names.alarm_prefix}alb-5xx-high",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 out of the last 1 datapoints [57.0] was greater than the threshold (10.0).",
    )


# --- a cascade, for the root-cause chain -----------------------------------------------------


@scenario(
    "outage-db-down",
    "Aurora stopped → the API crashes on DB errors → targets unhealthy → ALB 5XX alarm.",
    "all",
)
def _outage_db_down(stack: Stack) -> None:
    _aurora_stopped(stack)
    _log_lines(
        stack,
        [
            f"ERROR connect ECONNREFUSED {stack.outputs['aurora_cluster_endpoint']}:5432 #{i}"
            for i in range(30)
        ],
    )
    _stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=1,
    )
    _alb_unhealthy(stack)
    _alarms_firing(stack)
