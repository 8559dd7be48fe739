"""The project's own error types.

Every error a caller can act on is one of these, so an embedding process can catch
``VmcpError`` without also swallowing programming errors from elsewhere, and so a
message always names the field or resource that is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence


class VmcpError(Exception):
    """Base class of every error vmcp-actors raises on purpose."""


class ValidationError(VmcpError, ValueError):
    """A value failed validation; ``field`` is the dotted path of the offending field.

    Subclassing ``ValueError`` keeps the error catchable by code that only knows the
    standard library, while ``field`` lets tools and tests point at the exact key.
    """

    def __init__(self, field: str, message: str, value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message}")


class ReporterClosedError(VmcpError, RuntimeError):
    """``report_status`` was called after the reporter's shutdown began.

    Raised rather than silently dropped: a status sent after shutdown would never reach
    the sink, and the caller should know its update was lost.
    """


class ReporterNotStartedError(VmcpError, RuntimeError):
    """``report_status`` was called on a reporter whose ``start()`` has not run."""


class ShutdownTimeoutError(VmcpError, TimeoutError):
    """A reporter could not flush its pending status within the shutdown timeout."""

    def __init__(self, message: str, pending: object = None) -> None:
        self.pending = pending
        super().__init__(message)


class ConfigError(ValidationError):
    """A configuration was rejected; ``problems`` holds every problem found, not just the first.

    A user fixing a config file wants the whole list at once rather than one error per
    run, so the message lists each ``path: message`` line under the file name.  It is a
    ``ValidationError`` so callers that catch that still catch this; ``field`` is the
    first problem's path.  Values are never repeated here beyond what each problem's own
    message shows, and those never show env or header values.
    """

    def __init__(self, problems: Sequence[ValidationError], source: str | None = None) -> None:
        if not problems:
            raise ValueError("a ConfigError needs at least one problem")
        self.problems: list[ValidationError] = list(problems)
        self.source = source
        count = len(self.problems)
        where = f"{source}: " if source else ""
        lines = [f"{where}invalid configuration ({count} problem{'' if count == 1 else 's'}):"]
        lines.extend(f"  {problem}" for problem in self.problems)
        # Bypass ValidationError.__init__: the message is the list, not "field: message".
        Exception.__init__(self, "\n".join(lines))
        self.field = self.problems[0].field
        self.value = None


class KubernetesError(VmcpError):
    """A Kubernetes API call made for the VirtualMCPServer status failed.

    ``namespace`` and ``name`` say which object, ``status`` the HTTP status (``None`` when
    no response arrived).  Every subclass is meant to be retried later: wrapped in an
    ``ActorReporter``, the pending status is kept and written once the cause is fixed.
    """

    def __init__(self, message: str, *, namespace: str = "", name: str = "", status: int | None = None) -> None:
        self.namespace = namespace
        self.name = name
        self.status = status
        super().__init__(message)


class KubernetesConfigError(KubernetesError):
    """No cluster configuration could be loaded (neither in-cluster nor from a kubeconfig)."""


class KubernetesPermissionError(KubernetesError, PermissionError):
    """HTTP 403: the identity lacks an RBAC permission; ``verb`` on ``resource`` in ``group``.

    The message names the missing grant because the fix is always the same: add that verb
    on that resource to the Role bound to the runtime's ServiceAccount.
    """

    def __init__(
        self, message: str, *, namespace: str, name: str, verb: str, resource: str, group: str, status: int = 403
    ) -> None:
        self.verb = verb
        self.resource = resource
        self.group = group
        super().__init__(message, namespace=namespace, name=name, status=status)


class KubernetesNotFoundError(KubernetesError, LookupError):
    """HTTP 404: the VirtualMCPServer does not exist (yet, or any more)."""


class KubernetesTransientError(KubernetesError, ConnectionError):
    """The API server could not be reached, timed out, was overloaded or kept conflicting.

    Nothing is wrong with the request itself; trying again later is the whole remedy.
    """


# --------------------------------------------------------------------------- data plane


class RuntimeStoppedError(VmcpError, RuntimeError):
    """A command or request was sent to a runtime that has been stopped."""


class CapabilityNotFoundError(VmcpError, LookupError):
    """No routable backend exposes this tool, resource or prompt.

    ``kind`` is ``"tool"``, ``"resource"`` or ``"prompt"``; ``name`` is what the caller
    asked for.  ``backend`` and ``health`` are set when a backend does have it but it is
    not exposed (hidden by the aggregation config, or lost a name conflict), so the
    message can say why instead of just "not found".
    """

    kind = "capability"

    def __init__(self, name: str, reason: str = "", *, backend: str | None = None, health: str | None = None) -> None:
        self.name = name
        self.backend = backend
        self.health = health
        text = f"{self.kind} {name!r} not found"
        super().__init__(f"{text}: {reason}" if reason else text)


class ToolNotFoundError(CapabilityNotFoundError):
    """No routable backend exposes a tool of this name (see :class:`CapabilityNotFoundError`)."""

    kind = "tool"


class ResourceNotFoundError(CapabilityNotFoundError):
    """No routable backend exposes this resource URI or a template matching it."""

    kind = "resource"


class PromptNotFoundError(CapabilityNotFoundError):
    """No routable backend exposes a prompt of this name."""

    kind = "prompt"


class BackendUnavailableError(VmcpError, ConnectionError):
    """The backend that owns the capability cannot take requests now; retry later.

    Raised at once, without waiting for any timeout, when the backend is not routable
    (unhealthy, unknown, unauthenticated, or without a session), and when its session
    failed while a request was in flight.  ``health`` is its health at that moment.
    """

    def __init__(self, backend: str, reason: str, *, health: str | None = None, capability: str | None = None) -> None:
        self.backend = backend
        self.health = health
        self.capability = capability
        what = f"{capability!r} is served by backend {backend!r}, which" if capability else f"backend {backend!r}"
        super().__init__(f"{what} is unavailable: {reason}")


class ToolCallTimeoutError(VmcpError, TimeoutError):
    """A request routed to a backend got no answer within its timeout.

    The backend was sent a cancellation and the health monitor counts the timeout as a
    failed check at once.  ``operation`` is the MCP method (``tools/call``, ...).
    """

    def __init__(self, backend: str, capability: str, timeout: float, operation: str = "tools/call") -> None:
        self.backend = backend
        self.capability = capability
        self.timeout = timeout
        self.operation = operation
        super().__init__(f"{operation} {capability!r} on backend {backend!r}: no answer within {timeout:g}s")


class BackendRequestError(VmcpError):
    """The backend answered the request with a JSON-RPC error (it is alive; the request failed).

    ``code``, ``message`` and ``data`` are the backend's own, so a vMCP can pass them on
    unchanged.  A tool's ``isError`` result is a result, never this exception.
    """

    def __init__(self, backend: str, code: int, message: str, data: object = None) -> None:
        self.backend = backend
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"backend {backend!r} answered with error {code}: {message}")
