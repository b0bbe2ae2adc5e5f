"""The guide's stack, built in moto through boto3: VPC and NAT, ALB, ECS, Aurora, alarms, WAF.

:func:`seed` builds it through a :class:`~commands.aws.ClientPool` (so it works against an
in-process ``mock_aws`` or a ``ThreadedMotoServer`` alike) and returns a :class:`Stack`: the
Terraform outputs the stack would have, and the handles the scenarios need.  Each part of the
stack is its own function, in the order a Terraform apply would create them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from commands.aws import ClientPool
from commands.names import Names

from . import cloudtrail, operations
from .metrics import put_healthy_metrics
from .moto_ext import install_moto_extensions

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

    def client(self, service: str) -> Any:
        return self.pool.client(service, self.region)

    @property
    def now(self) -> datetime:
        now: datetime = self.extra["now"]
        return now


@dataclass
class Build:
    """What the parts of the stack share while it is being built."""

    pool: ClientPool
    names: Names
    region: str
    now: datetime
    outputs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def c(self, service: str) -> Any:
        return self.pool.client(service, self.region)

    def stack_view(self) -> Stack:
        """The stack so far (for the helpers that take one)."""
        return Stack(
            self.region, self.names, self.outputs, self.pool, {**self.extra, "now": self.now}
        )

    @property
    def base(self) -> str:
        return f"{self.names.project}-{self.names.environment}"


def seed(pool: ClientPool, names: Names, region: str, *, now: datetime | None = None) -> Stack:
    """Build the whole stack of the guide in the AWS that ``pool`` talks to."""
    install_moto_extensions()
    from moto.moto_api import state_manager

    # describe_tasks would otherwise advance a task's status on every call
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    b = Build(pool, names, region, now or datetime.now(UTC))
    b.extra["account"] = b.c("sts").get_caller_identity()["Account"]
    cloudtrail.forget(b.extra["account"], region)
    for part in (_network, _security_groups, _alb, _iam_and_ecr, _logs, _ecs, _aurora):
        part(b)
    operations.seed(b)
    stack = Stack(region=region, names=names, pool=pool, outputs=b.outputs, extra=b.extra)
    stack.extra["now"] = b.now
    put_healthy_metrics(pool, stack)
    cloudtrail.record_seed_history(stack)
    stack.extra["state_url"] = operations.write_state(stack)
    return stack


def _network(b: Build) -> None:
    ec2 = b.c("ec2")
    azs = [f"{b.region}a", f"{b.region}b"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})

    def subnet(cidr: str, az: str, tier: str) -> str:
        sid: str = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"][
            "SubnetId"
        ]
        ec2.create_tags(
            Resources=[sid],
            Tags=[
                {"Key": "Name", "Value": f"{b.base}-{tier}-{az}"},
                {"Key": "Tier", "Value": tier},
            ],
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
    b.outputs.update(
        vpc_id=vpc,
        private_app_subnet_ids=private_app,
        public_subnet_ids=public,
        nat_gateway_ids=nat_ids,
    )
    b.extra.update(private_route_tables=private_rts, private_db_subnet_ids=private_db, igw=igw)


def _security_groups(b: Build) -> None:
    ec2, vpc = b.c("ec2"), b.outputs["vpc_id"]

    def sg(name: str, desc: str) -> str:
        gid: str = ec2.create_security_group(
            GroupName=name,
            Description=desc,
            VpcId=vpc,
            # the tag the fixes policy scopes ingress changes by (Terraform's default_tags)
            TagSpecifications=[
                {
                    "ResourceType": "security-group",
                    "Tags": [{"Key": "Project", "Value": b.names.project}],
                }
            ],
        )["GroupId"]
        return gid

    alb_sg = sg(f"{b.base}-alb", "ALB")
    ecs_sg = sg(f"{b.base}-ecs", "ECS tasks")
    aurora_sg = sg(f"{b.base}-aurora", "Aurora")
    ec2.authorize_security_group_ingress(
        GroupId=alb_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            for p in (80, 443)
        ],
    )
    for group, port, source in ((ecs_sg, 3000, alb_sg), (aurora_sg, 5432, ecs_sg)):
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "UserIdGroupPairs": [{"GroupId": source}],
                }
            ],
        )
    b.outputs.update(
        alb_security_group_id=alb_sg,
        ecs_security_group_id=ecs_sg,
        aurora_security_group_id=aurora_sg,
    )


def _alb(b: Build) -> None:
    elbv2 = b.c("elbv2")
    lb = elbv2.create_load_balancer(
        Name=f"{b.base}-alb"[:32],
        Subnets=b.outputs["public_subnet_ids"],
        SecurityGroups=[b.outputs["alb_security_group_id"]],
        Scheme="internet-facing",
        Type="application",
    )["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name=f"{b.base}-api"[:32],
        Protocol="HTTP",
        Port=3000,
        VpcId=b.outputs["vpc_id"],
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
    elbv2.register_targets(
        TargetGroupArn=tg["TargetGroupArn"],
        Targets=[{"Id": f"10.0.{10 + i}.25", "Port": 3000} for i in range(2)],
    )
    b.outputs.update(
        alb_arn=lb["LoadBalancerArn"],
        alb_arn_suffix=lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1],
        alb_dns_name=lb["DNSName"],
    )
    b.extra["target_group_arn"] = tg["TargetGroupArn"]


_EXECUTION_ACTIONS = [
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "secretsmanager:GetSecretValue",
]


def trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def _allow(actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
    )


def _iam_and_ecr(b: Build) -> None:
    iam, ecr, names = b.c("iam"), b.c("ecr"), b.names
    role_arn = iam.create_role(
        RoleName=names.task_execution_role,
        AssumeRolePolicyDocument=trust("ecs-tasks.amazonaws.com"),
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=names.task_execution_role,
        PolicyName="ECSTaskExecutionPolicy",
        PolicyDocument=_allow(_EXECUTION_ACTIONS),
    )
    logs_policy = iam.create_policy(
        PolicyName=f"{b.base}-ecs-task-execution-logs",
        PolicyDocument=_allow(["logs:CreateLogStream", "logs:PutLogEvents"]),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=names.task_execution_role, PolicyArn=logs_policy)
    ecr.create_repository(repositoryName=names.ecr_repository)
    ecr.put_image(
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
    b.extra["execution_role_arn"] = role_arn


def _logs(b: Build) -> None:
    from .scenarios._faults import log_lines

    logs = b.c("logs")
    logs.create_log_group(logGroupName=b.names.log_group)
    log_lines(b.pool, b.region, b.names, b.now, ["INFO server listening on :3000"], "healthy")


def _ecs(b: Build) -> None:
    ecs, names, region = b.c("ecs"), b.names, b.region
    ecs.create_cluster(clusterName=names.ecs_cluster)
    repo_uri = f"{b.extra['account']}.dkr.ecr.{region}.amazonaws.com/{names.ecr_repository}"
    td = ecs.register_task_definition(
        family=names.ecs_service,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        executionRoleArn=b.extra["execution_role_arn"],
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
                "subnets": b.outputs["private_app_subnet_ids"],
                "securityGroups": [b.outputs["ecs_security_group_id"]],
                "assignPublicIp": "DISABLED",
            }
        },
        loadBalancers=[
            {
                "targetGroupArn": b.extra["target_group_arn"],
                "containerName": "api",
                "containerPort": 3000,
            }
        ],
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
    )
    # moto leaves runningCount at 0 after create_service; update_service makes it = desired
    ecs.update_service(cluster=names.ecs_cluster, service=names.ecs_service, desiredCount=2)
    b.extra.update(
        task_definition_arn=td["taskDefinitionArn"],
        service_key=f"{names.ecs_cluster}:{names.ecs_service}",
    )
    _settled(b)


def _settled(b: Build) -> None:
    """What ECS shows for a service deployed days ago: its deployment COMPLETED, and its last
    events those of a rollout that reached a steady state (moto shows IN_PROGRESS forever)."""
    from .moto_ext import backend

    svc = backend("ecs", b.stack_view()).services[b.extra["service_key"]]
    deployed = b.now - timedelta(days=3)
    deployment = svc.deployments[0]
    deployment.update(
        rolloutState="COMPLETED",
        rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
        runningCount=2,
        pendingCount=0,
        createdAt=deployed,
        updatedAt=deployed + timedelta(minutes=6),
    )
    name = b.names.ecs_service
    svc.events[:0] = [
        {
            "id": "steady-1",
            "createdAt": b.now - timedelta(hours=2),
            "message": f"(service {name}) has reached a steady state.",
        },
        {
            "id": "complete-1",
            "createdAt": deployed + timedelta(minutes=6),
            "message": f"(service {name}) (deployment {deployment['id']}) deployment completed.",
        },
        {
            "id": "started-1",
            "createdAt": deployed + timedelta(minutes=1),
            "message": f"(service {name}) has started 2 tasks: (task a1b2) (task c3d4).",
        },
    ]


def _aurora(b: Build) -> None:
    rds, names = b.c("rds"), b.names
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"{b.base}-db",
        DBSubnetGroupDescription="db",
        SubnetIds=b.extra["private_db_subnet_ids"],
    )
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=names.aurora_cluster,
        Engine="aurora-postgresql",
        EngineVersion="15.4",
        MasterUsername="omni_admin",
        MasterUserPassword=DB_PASSWORD,
        DatabaseName=names.project.replace("-", "_"),
        DBSubnetGroupName=f"{b.base}-db",
        VpcSecurityGroupIds=[b.outputs["aurora_security_group_id"]],
        Port=5432,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4.0},
    )["DBCluster"]
    for n in (1, 2):  # a writer and a reader, as the guide's module creates them
        rds.create_db_instance(
            DBInstanceIdentifier=f"{names.aurora_cluster}-{n}",
            DBClusterIdentifier=names.aurora_cluster,
            DBInstanceClass="db.serverless",
            Engine="aurora-postgresql",
        )
    writer, reader = cluster["Endpoint"], cluster["ReaderEndpoint"]
    secret = f"{names.project}/{names.environment}/database-url"
    b.c("secretsmanager").create_secret(
        Name=secret,
        SecretString=f"postgresql://{DB_USER}:{DB_PASSWORD}@{writer}:5432/{names.project}",
    )
    b.outputs["aurora_cluster_endpoint"] = writer
    b.extra.update(
        reader_endpoint=reader,
        db_url_secret=secret,
        db_instances=[f"{names.aurora_cluster}-1", f"{names.aurora_cluster}-2"],
    )
