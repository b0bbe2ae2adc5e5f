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
        },
        extra={
            "account": account,
            "reader_endpoint": reader,
            "target_group_arn": tg["TargetGroupArn"],
            "task_definition_arn": td["taskDefinitionArn"],
            "private_route_tables": private_rts,
            "subscription_arn": sub,
            "db_url_secret": f"{names.project}/{names.environment}/database-url",
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


# ---------------------------------------------------------------------------------------------
# scenarios: one per cause in the guide
# ---------------------------------------------------------------------------------------------


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
