"""What a task needs to start: its image, its execution role's permissions, free IPs, a sane
container health check (guide §1, "ECS Tasks Failing to Start")."""

from __future__ import annotations

import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...context import CheckContext
from ...errors import AwsCallError, ResourceNotFound
from ...models import Finding, Status
from ...registry import check
from ._iam import allows, role_documents

_ECR_ACTIONS = ("ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
# <registry>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag][@digest]
_ECR_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def images(ctx: CheckContext) -> list[str]:
    return [str(c.get("image", "")) for c in ctx.task_definition().get("containerDefinitions", [])]


def parse_image(image: str) -> dict[str, str] | None:
    """Registry (account), region, repository, tag or digest of an ECR image URI."""
    m = _ECR_IMAGE.match(image)
    if not m:
        return None
    return {k: v for k, v in m.groupdict().items() if v}


@check("ecs.image_repository", title="ECR repository and image")
def image_repository(ctx: CheckContext) -> Finding:
    found_images = images(ctx)
    ecr = [(i, parse_image(i)) for i in found_images]
    ecr = [(i, p) for i, p in ecr if p is not None]
    if not ecr:
        return ctx.finding(
            Status.SKIPPED, "The task's images are not in ECR", "", {"images": found_images}
        )

    def look(image: str, ref: dict[str, str]) -> dict[str, Any]:
        repo = ref["repository"]
        image_id = (
            {"imageDigest": ref["digest"]}
            if "digest" in ref
            else {"imageTag": ref.get("tag", "latest")}
        )
        try:  # one call answers both: is the repository there, and the image in it?
            # in the image's own registry and region, which may be another account's or region's
            found = ctx.aws.call(
                "ecr",
                "describe_images",
                in_region=ref["region"],
                registryId=ref["registry"],
                repositoryName=repo,
                imageIds=[image_id],
            )
        except AwsCallError as exc:
            where = f"{ref['registry']} {ref['region']}"
            if exc.code == "RepositoryNotFoundException":
                return {"image": image, "problem": f"repository {repo} not found ({where})"}
            if exc.code == "ImageNotFoundException":
                missing = next(iter(image_id.values()))
                return {"image": image, "problem": f"{missing} not in {repo} ({where})"}
            raise
        detail = (found.get("imageDetails") or [{}])[0]
        pushed = detail.get("imagePushedAt")
        return {
            "image": image,
            "registry": ref["registry"],
            "region": ref["region"],
            "repository": repo,
            "digest": detail.get("imageDigest"),
            "pushed_at": pushed.isoformat() if hasattr(pushed, "isoformat") else pushed,
        }

    results = ctx.gather(*[(lambda i=i, p=p: look(i, p)) for i, p in ecr])
    problems = [r for r in results if "problem" in r]
    evidence = {"ok": [r for r in results if "problem" not in r], "problems": problems}
    resources = [r["image"] for r in results]
    if problems:
        return ctx.finding(
            Status.FAIL,
            f"Image not pullable: {problems[0]['problem']}",
            "Tasks fail with CannotPullContainerError until the image exists.",
            evidence,
            resources=resources,
        )
    return ctx.finding(
        Status.OK, "ECR repository and image exist", "", evidence, resources=resources
    )


def _secret_actions(td: dict[str, Any]) -> list[str]:
    """What the execution role must allow for the containers' ``secrets`` to be injected."""
    needed = set()
    for container in td.get("containerDefinitions", []):
        for secret in container.get("secrets", []) or []:
            source = str(secret.get("valueFrom", ""))
            needed.add(
                "ssm:GetParameters" if ":ssm:" in source else "secretsmanager:GetSecretValue"
            )
    return sorted(needed)


@check("ecs.execution_role_ecr", title="Task execution role can pull from ECR")
def execution_role_ecr(ctx: CheckContext) -> Finding:
    conventional = ctx.names.task_execution_role

    def speculative() -> dict[str, dict[str, Any]] | None:
        """The conventional role's policies, read while the task definition is being found:
        it is the role in use nearly always, and this takes two calls off the critical path."""
        try:
            return role_documents(ctx, conventional)
        except AwsCallError:
            return None

    # its own thread, not the shared pool: the guess itself fans out on the shared pool
    guesser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni-guess")
    try:
        guess = guesser.submit(speculative)
        td = ctx.task_definition()
        arn = td.get("executionRoleArn")
        role = str(arn).rsplit("/", 1)[-1] if arn else conventional
        if not arn and not any(".dkr.ecr." in i for i in images(ctx)):
            return ctx.finding(Status.SKIPPED, "No execution role and no ECR image", "")
        guessed = guess.result() if role == conventional else None
    finally:
        guesser.shutdown(wait=False)
    try:
        docs = guessed if guessed is not None else role_documents(ctx, role)
    except AwsCallError as exc:
        if exc.code == "NoSuchEntity":
            return ctx.finding(
                Status.FAIL,
                f"Task execution role {role} does not exist",
                "Fargate cannot pull the image, inject secrets or write logs.",
                {"role": role},
                resources=[role],
            )
        raise
    wanted = [*_ECR_ACTIONS, *_secret_actions(td)]
    missing = [a for a in wanted if not any(allows(d, a) for d in docs.values())]
    evidence = {"role": role, "policies": sorted(docs), "needs": wanted, "missing_actions": missing}
    if missing:
        what = "pull from ECR" if set(missing) & set(_ECR_ACTIONS) else "read the task's secrets"
        return ctx.finding(
            Status.FAIL,
            f"Execution role {role} cannot {what}",
            f"Missing: {', '.join(missing)} (guide: ECSTaskExecutionPolicy).",
            evidence,
            resources=[role],
        )
    return ctx.finding(
        Status.OK, f"Execution role {role} can pull from ECR", "", evidence, resources=[role]
    )


@check("ecs.subnet_ips", title="Free IPs in the private app subnets")
def subnet_ips(ctx: CheckContext) -> Finding:
    subnet_ids = ctx.private_app_subnet_ids()
    if not subnet_ids:
        return ctx.finding(
            Status.SKIPPED,
            "Private app subnets unknown",
            "Set the Terraform output private_app_subnet_ids.",
        )
    subnets = ctx.aws.call("ec2", "describe_subnets", SubnetIds=subnet_ids).get("Subnets", [])
    free = {s["SubnetId"]: max(0, int(s.get("AvailableIpAddressCount", 0))) for s in subnets}
    desired = 1
    with contextlib.suppress(ResourceNotFound):
        desired = max(1, int(ctx.ecs_service().get("desiredCount", 1)))
    evidence = {"available_ips": free, "desired_tasks": desired}
    total = sum(free.values())
    empty = [s for s, n in free.items() if n == 0]
    if total < desired or (empty and len(empty) == len(free)):
        return ctx.finding(
            Status.FAIL,
            "Private app subnets are out of IP addresses",
            f"{total} free IPs for {desired} tasks (each Fargate task needs one). Expand the CIDR "
            "or add subnets.",
            evidence,
            resources=list(free),
        )
    if empty or min(free.values()) < 2 * desired:
        return ctx.finding(
            Status.WARN,
            f"Few free IPs in the private app subnets ({total} free)",
            f"Subnets with no free IP: {', '.join(empty) or 'none'}.",
            evidence,
            resources=list(free),
        )
    return ctx.finding(Status.OK, f"{total} free IPs in the private app subnets", "", evidence)


@check("ecs.health_check", title="Container health check settings")
def health_check(ctx: CheckContext) -> Finding:
    containers = ctx.task_definition().get("containerDefinitions", [])
    configs = {c["name"]: c.get("healthCheck") for c in containers if c.get("essential", True)}
    configured = {n: hc for n, hc in configs.items() if hc}
    if not configured:
        return ctx.finding(
            Status.OK,
            "No container health check (the target group's health check decides)",
            "",
            {"containers": sorted(configs)},
        )
    issues = []
    for name, hc in configured.items():
        interval, timeout = hc.get("interval", 30), hc.get("timeout", 5)
        retries, start = hc.get("retries", 3), hc.get("startPeriod", 0)
        if timeout >= interval:
            issues.append(f"{name}: timeout {timeout}s ≥ interval {interval}s")
        if retries < 2:
            issues.append(f"{name}: retries {retries} (one slow answer kills the task)")
        if not start:
            issues.append(f"{name}: no startPeriod (tasks are judged while still booting)")
    evidence = {"health_checks": configured, "issues": issues}
    if issues:
        return ctx.finding(
            Status.WARN,
            "Container health check is strict",
            "; ".join(issues) + ". Guide: adjust timeout, retries, startPeriod.",
            evidence,
        )
    return ctx.finding(Status.OK, "Container health check settings are reasonable", "", evidence)
