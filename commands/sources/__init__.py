"""Alarm sources: each way an alarm reaches Omni, one module behind one interface.

    cloudwatch   CloudWatch alarm JSON: an SNS notification to ``POST /sns`` (signature
                 versions 1 and 2), a Lambda SNS event, or the bare alarm
    pagerduty    PagerDuty v3 webhooks to ``POST /pagerduty`` (HMAC-signed)
    slack        alarm posts in a channel by PagerDuty, AWS Chatbot / Amazon Q or any
                 SNS-to-Slack app (Slack's own signature is checked by Bolt)

A source says whether a document is its own (:meth:`AlarmSource.detect`), reads the alarm in
it (:meth:`~AlarmSource.parse`), verifies a delivery and returns the document
(:meth:`~AlarmSource.verify`, raising :class:`Rejected`), names the key that makes a delivery
a duplicate (:meth:`~AlarmSource.dedup_key`), answers control messages such as SNS's
subscription confirmation (:meth:`~AlarmSource.control`) and writes the channel post that
announces the alarm (:meth:`~AlarmSource.headline`).  The bot's HTTP endpoints and its
message listener are generic over these; adding a source is adding a module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from ..alarm import Alarm
from ..errors import OmniError
from ..text import escape


class Rejected(OmniError):
    """A delivery that is not genuine, fresh or allowed; ``reason`` labels the metric."""

    def __init__(self, detail: str, reason: str = "signature", status: int = 403) -> None:
        super().__init__(detail)
        self.detail, self.reason, self.status = detail, reason, status


class AlarmSource:
    """The interface; see the module docstring."""

    name: ClassVar[str]
    endpoint: ClassVar[str | None] = None  # the HTTP path Omni receives it on, if any

    def __init__(self, settings: Any = None, **deps: Any) -> None:
        self.settings = settings
        self.deps = deps

    def detect(self, doc: Any) -> bool:
        raise NotImplementedError

    def parse(self, doc: Any, known_names: Iterable[str] = ()) -> Alarm | None:
        raise NotImplementedError

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The delivered document, once it is verified (``headers`` with lower-case names);
        raises :class:`Rejected`."""
        raise Rejected(f"{self.name} has no endpoint", "not_found", 404)

    def dedup_key(self, doc: Mapping[str, Any]) -> str | None:
        return None

    def control(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], int] | None:
        """The answer to a message that is not an alarm (None: it may be one)."""
        return None

    def headline(self, alarm: Alarm, doc: Mapping[str, Any]) -> str:
        return f":rotating_light: *{escape(alarm.state)}*: {escape(alarm.name)}"


_SOURCES: dict[str, type[AlarmSource]] = {}


def source(cls: type[AlarmSource]) -> type[AlarmSource]:
    """Register a source class (the decorator each source module uses)."""
    _SOURCES[cls.name] = cls
    return cls


def classes() -> dict[str, type[AlarmSource]]:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(_SOURCES)


def instances(settings: Any = None, **deps: Any) -> list[AlarmSource]:
    """One instance of every source, sharing the settings and dependencies given."""
    return [cls(settings, **deps) for cls in classes().values()]


def _order() -> list[AlarmSource]:  # detection order: the most specific shapes first
    found = {s.name: s for s in instances()}
    return [found[n] for n in ("pagerduty", "cloudwatch", "slack") if n in found] + [
        s for n, s in found.items() if n not in ("pagerduty", "cloudwatch", "slack")
    ]


def source_of(doc: Any) -> str | None:
    """The name of the source whose document this is, or None."""
    return next((s.name for s in _order() if s.detect(doc)), None)


def parse_any(doc: Any, known_names: Iterable[str] = ()) -> Alarm | None:
    """Detect the document's source and read the alarm in it; None when there is none."""
    for src in _order():
        if src.detect(doc):
            return src.parse(doc, known_names)
    return None


def with_endpoints(settings: Any, **deps: Any) -> dict[str, AlarmSource]:
    """The sources Omni receives over HTTP, by path."""
    return {s.endpoint: s for s in instances(settings, **deps) if s.endpoint}


Parser = Callable[[Any, Iterable[str]], Alarm | None]
