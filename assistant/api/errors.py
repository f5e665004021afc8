"""The API's errors, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

Every refusal of /api/v1/ is an ApiError raised by a service and turned into a response
here, so that the status, the type and the code of each case are written once (the table
in docs/api.md mirrors them).
"""

from __future__ import annotations

import json

from django.http import JsonResponse


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, kind: str, code: str | None = None, param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = kind  # OpenAI's error type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def sse(self) -> bytes:
        """The error as a server-sent event, for a stream that already started (the SDKs raise it)."""
        return b"data: " + json.dumps(self.body()).encode() + b"\n\n"

    # --- the cases, by status --------------------------------------------------------

    @classmethod
    def bad_request(cls, message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
        return cls(400, message, kind="invalid_request_error", param=param, code=code)

    @classmethod
    def unauthorized(cls, message: str, *, code: str) -> ApiError:
        return cls(401, message, kind="authentication_error", code=code)

    @classmethod
    def forbidden(cls, message: str, *, code: str, param: str | None = None) -> ApiError:
        return cls(403, message, kind="permission_error", code=code, param=param)

    @classmethod
    def not_found(cls, message: str, *, code: str = "not_found", param: str | None = None) -> ApiError:
        return cls(404, message, kind="invalid_request_error", code=code, param=param)

    @classmethod
    def method_not_allowed(cls, method: str, allowed: str) -> ApiError:
        return cls(405, f"{method} is not allowed here; use {allowed}.", kind="invalid_request_error",
                   code="method_not_allowed", headers={"Allow": allowed})

    @classmethod
    def too_large(cls, limit: int) -> ApiError:
        return cls(413, f"The request body is larger than {limit:,} bytes.", kind="invalid_request_error",
                   code="request_too_large")

    @classmethod
    def rate_limited(cls, message: str, *, code: str, retry_after_s: float, headers: dict[str, str]) -> ApiError:
        retry_after = max(1, int(-(-retry_after_s // 1)))  # whole seconds, rounded up
        return cls(429, message, kind="rate_limit_error", code=code,
                   headers={**headers, "Retry-After": str(retry_after)})

    @classmethod
    def upstream(cls, message: str) -> ApiError:
        return cls(502, message, kind="api_error", code="upstream_error")

    @classmethod
    def upstream_timeout(cls, message: str) -> ApiError:
        return cls(504, message, kind="timeout_error", code="upstream_timeout")


def error_response(error: ApiError, *, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in {**(headers or {}), **error.headers}.items():
        response[name] = value
    return response
