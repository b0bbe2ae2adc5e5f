"""What a check sees: settings, names, Terraform outputs, AWS, and shared resolvers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from .aws import AwsCaller, marker_pages
from .errors import AwsCallError, ResourceNotFound
from .models import Finding, Remediation, Status
from .names import Names
from .settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class CheckContext:
    settings: Settings
    names: Names
    region: str
    aws: AwsCaller
    outputs: dict[str, Any]
    now: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(second=0, microsecond=0)
    )
    _inner: ThreadPoolExecutor | None = None

    # -- concurrency ------------------------------------------------------------------------
    def gather(self, *fns: Callable[[], Any]) -> list[Any]:
        """Run independent steps concurrently; re-raise the first error in argument order."""
        if len(fns) <= 1 or self._inner is None:
            return [fn() for fn in fns]
        futures = [self._inner.submit(fn) for fn in fns]
        return [f.result() for f in futures]

    # -- findings ----------------------------------------------------------------------------
    @staticmethod
    def finding(
        status: Status,
        title: str,
        detail: str = "",
        evidence: dict[str, Any] | None = None,
        remediations: list[Remediation] | None = None,
        *,
        resources: list[str] | None = None,
    ) -> Finding:
        """A finding; ``resources``: the ids, names or ARNs it is about (what a recent change
        must have touched to be its lead)."""
        return Finding(
            status=status,
            title=title,
            detail=detail,
            evidence=evidence or {},
            remediations=remediations or [],
            resources=sorted(set(resources or [])),
        )

    @staticmethod
    def propose(fix_id: str, **params: Any) -> Remediation:
        """A catalogued fix with its exact parameters (validated now: see commands.fixes)."""
        from .fixes import propose

        return propose(fix_id, **params)

    # -- terraform outputs -------------------------------------------------------------------
    def output(self, name: str) -> Any | None:
        value = self.outputs.get(name)
        return value if value not in ("", [], None) else None

    def output_list(self, name: str) -> list[str]:
        value = self.output(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return [str(v) for v in value]

    # -- metrics -----------------------------------------------------------------------------
    def metric(
        self,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        statistics: tuple[str, ...] = ("Average", "Maximum"),
        minutes: int = 60,
        period: int = 60,
    ) -> list[dict[str, Any]]:
        """Datapoints of one metric over the last ``minutes``, oldest first."""
        response = self.aws.call(
            "cloudwatch",
            "get_metric_statistics",
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
            StartTime=self.now - timedelta(minutes=minutes),
            EndTime=self.now,
            Period=period,
            Statistics=list(statistics),
        )
        return sorted(response.get("Datapoints", []), key=lambda d: d["Timestamp"])

    # -- shared resolvers (each underlying call is memoised by the AwsCaller) -----------------
    def aurora_cluster(self) -> dict[str, Any]:
        name = self.names.aurora_cluster
        try:
            clusters = self.aws.call("rds", "describe_db_clusters", DBClusterIdentifier=name).get(
                "DBClusters", []
            )
        except AwsCallError as exc:
            if exc.code in {"DBClusterNotFoundFault", "DBClusterNotFound"}:
                raise ResourceNotFound("Aurora cluster", name, self.where) from exc
            raise
        if not clusters:
            raise ResourceNotFound("Aurora cluster", name, self.where)
        cluster: dict[str, Any] = clusters[0]
        return cluster

    def aurora_instances(self) -> list[dict[str, Any]]:
        """The cluster's instances (status, class, which one writes), one shared call."""
        name = self.names.aurora_cluster
        found = self.aws.paginate(
            "rds",
            "describe_db_instances",
            "DBInstances",
            Filters=[{"Name": "db-cluster-id", "Values": [name]}],
        )
        return [i for i in found if i.get("DBClusterIdentifier", name) == name]

    def writer_instance(self) -> str | None:
        """The writer's DBInstanceIdentifier (the cluster member flagged IsClusterWriter)."""
        for member in self.aurora_cluster().get("DBClusterMembers", []):
            if member.get("IsClusterWriter"):
                return str(member["DBInstanceIdentifier"])
        return None

    def aurora_security_group_ids(self) -> list[str]:
        from_output = self.output_list("aurora_security_group_id")
        if from_output:
            return from_output
        return [g["VpcSecurityGroupId"] for g in self.aurora_cluster().get("VpcSecurityGroups", [])]

    def ecs_service(self) -> dict[str, Any]:
        try:
            response = self.aws.call(
                "ecs",
                "describe_services",
                cluster=self.names.ecs_cluster,
                services=[self.names.ecs_service],
            )
        except AwsCallError as exc:
            if exc.code in {"ClusterNotFoundException", "ServiceNotFoundException"}:
                raise ResourceNotFound(
                    "ECS service",
                    self.names.ecs_service,
                    f"cluster {self.names.ecs_cluster}, {self.where}",
                ) from exc
            raise
        services = [s for s in response.get("services", []) if s.get("status") != "INACTIVE"]
        if not services:
            raise ResourceNotFound(
                "ECS service",
                self.names.ecs_service,
                f"cluster {self.names.ecs_cluster}, {self.where}",
            )
        service: dict[str, Any] = services[0]
        return service

    def ecs_security_group_ids(self) -> list[str]:
        from_output = self.output_list("ecs_security_group_id")
        if from_output:
            return from_output
        net = self.ecs_service().get("networkConfiguration", {}).get("awsvpcConfiguration", {})
        return list(net.get("securityGroups", []))

    def task_definition(self) -> dict[str, Any]:
        arn = self.ecs_service().get("taskDefinition")
        if not arn:
            raise ResourceNotFound("task definition", f"of {self.names.ecs_service}", self.where)
        td: dict[str, Any] = self.aws.call("ecs", "describe_task_definition", taskDefinition=arn)[
            "taskDefinition"
        ]
        return td

    def log_groups(self) -> list[str]:
        """Where the service's containers log: ``OMNI_LOG_GROUP`` when set; else the
        ``awslogs`` group of each essential container of the running task definition (in this
        region: a stack need not follow the guide's ``/ecs/<project>-<env>/api``); else that
        convention."""
        if self.settings.log_group:
            return [self.settings.log_group]
        try:
            td = self.task_definition()
        except ResourceNotFound:
            return [self.names.log_group]
        groups: list[str] = []
        for c in td.get("containerDefinitions", []):
            config = c.get("logConfiguration") or {}
            options = config.get("options") or {}
            group = options.get("awslogs-group")
            region = options.get("awslogs-region")
            if (
                config.get("logDriver") == "awslogs"
                and group
                and c.get("essential", True)
                and region in (None, self.region)
                and group not in groups
            ):
                groups.append(str(group))
        return groups or [self.names.log_group]

    def service_subnets(self) -> list[str]:
        net = self.ecs_service().get("networkConfiguration", {}).get("awsvpcConfiguration", {})
        return list(net.get("subnets", []))

    def private_app_subnet_ids(self) -> list[str]:
        return self.output_list("private_app_subnet_ids") or self.service_subnets()

    def load_balancer(self) -> dict[str, Any]:
        arn = self.output("alb_arn")
        if arn:
            try:
                lbs = self.aws.call("elbv2", "describe_load_balancers", LoadBalancerArns=[arn])
            except AwsCallError as exc:
                if exc.code == "LoadBalancerNotFound":
                    raise ResourceNotFound("load balancer", str(arn), self.where) from exc
                raise
            return dict(lbs["LoadBalancers"][0])
        # No output: the load balancer in front of the service's target group.
        for lb_ref in self.ecs_service().get("loadBalancers", []):
            tg_arn = lb_ref.get("targetGroupArn")
            if not tg_arn:
                continue
            tgs = self.aws.call("elbv2", "describe_target_groups", TargetGroupArns=[tg_arn])
            for tg in tgs.get("TargetGroups", []):
                for lb_arn in tg.get("LoadBalancerArns", []):
                    lbs = self.aws.call(
                        "elbv2", "describe_load_balancers", LoadBalancerArns=[lb_arn]
                    )
                    return dict(lbs["LoadBalancers"][0])
        raise ResourceNotFound(
            "load balancer", "(set the Terraform output alb_arn)", f"{self.where}"
        )

    def target_groups(self) -> list[dict[str, Any]]:
        # with the alb_arn output, ask for the groups at once rather than after describing the LB
        arn = self.output("alb_arn") or self.load_balancer()["LoadBalancerArn"]
        try:
            found = self.aws.call("elbv2", "describe_target_groups", LoadBalancerArn=str(arn))
        except AwsCallError as exc:
            if exc.code == "LoadBalancerNotFound":
                raise ResourceNotFound("load balancer", str(arn), self.where) from exc
            raise
        return list(found.get("TargetGroups", []))

    def alb_arn_suffix(self) -> str:
        suffix = self.output("alb_arn_suffix")
        if suffix:
            return str(suffix)
        return str(self.load_balancer()["LoadBalancerArn"]).split(":loadbalancer/", 1)[1]

    def alb_security_group_ids(self) -> list[str]:
        return self.output_list("alb_security_group_id") or list(
            self.load_balancer().get("SecurityGroups", [])
        )

    def vpc_id(self) -> str:
        vpc = self.output("vpc_id")
        if vpc:
            return str(vpc)
        subnets = self.service_subnets()
        if subnets:
            described = self.aws.call("ec2", "describe_subnets", SubnetIds=subnets)
            return str(described["Subnets"][0]["VpcId"])
        return str(self.load_balancer()["VpcId"])

    def route_tables(self) -> list[dict[str, Any]]:
        return list(
            self.aws.call(
                "ec2",
                "describe_route_tables",
                Filters=[{"Name": "vpc-id", "Values": [self.vpc_id()]}],
            ).get("RouteTables", [])
        )

    def ecs_metric_dims(self) -> dict[str, str]:
        return {"ClusterName": self.names.ecs_cluster, "ServiceName": self.names.ecs_service}

    def web_acl(self) -> dict[str, Any]:
        """The WAFv2 Web ACL (``waf_web_acl_arn`` output, else by name), with its lock token."""
        arn = self.output("waf_web_acl_arn")
        name, acl_id = self.names.waf_acl, None
        if arn:
            parts = str(arn).split("/")
            name, acl_id = parts[-2], parts[-1]
        else:
            for summary in self.waf_list("list_web_acls", "WebACLs"):
                if summary["Name"] == name:
                    acl_id = summary["Id"]
            if acl_id is None:
                raise ResourceNotFound("WAF web ACL", name, f"REGIONAL scope, {self.where}")
        try:
            response = self.aws.call("wafv2", "get_web_acl", Name=name, Id=acl_id, Scope="REGIONAL")
        except AwsCallError as exc:
            if exc.code == "WAFNonexistentItemException":
                raise ResourceNotFound(
                    "WAF web ACL", name, f"REGIONAL scope, {self.where}"
                ) from exc
            raise
        acl: dict[str, Any] = dict(response["WebACL"])
        acl["LockToken"] = response.get("LockToken")
        return acl

    def waf_list(self, operation: str, key: str) -> list[dict[str, Any]]:
        """Every item of a WAFv2 list call (they page with NextMarker, 100 at a time)."""
        return marker_pages(
            lambda **params: self.aws.call("wafv2", operation, **params), key, Scope="REGIONAL"
        )

    def secret_string(self, secret_id: str) -> str:
        try:
            value = self.aws.call("secretsmanager", "get_secret_value", SecretId=secret_id)
        except AwsCallError as exc:
            if exc.code == "ResourceNotFoundException":
                raise ResourceNotFound("Secrets Manager secret", secret_id, self.where) from exc
            raise
        return str(value.get("SecretString") or "")

    @property
    def where(self) -> str:
        account = self.settings.account_id
        return f"region {self.region}" + (f", account {account}" if account else "")
