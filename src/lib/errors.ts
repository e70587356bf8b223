/**
 * @module The one error class and the one error shape.
 *
 * Every error leaves the Worker as `{detail, code, request_id}` with
 * `Content-Type: application/json`: `detail` is a human sentence (the FastAPI field the
 * chutes CLI prints), `code` a stable machine-readable string from `ERROR_STATUS`, and
 * `request_id` the id also sent in the `X-Request-Id` header and written to the logs.
 * Validation errors add `errors: [{loc, msg}]`.
 */

/** Every error code and the HTTP status it maps to. */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  /** Upstream answers the developer-deposit gate with 401; kept for CLI compatibility. */
  developer_deposit_required: 401,
  payment_required: 402,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  gone: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  upgrade_required: 426,
  rate_limited: 429,
  at_capacity: 429,
  internal: 500,
  config_invalid: 500,
  bad_gateway: 502,
  dependency_unavailable: 503,
  no_instances: 503,
  gateway_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ValidationIssue {
  /** Where the problem is, e.g. `["body", "username"]`. */
  loc: (string | number)[];
  msg: string;
}

export interface ApiErrorOptions {
  /** Extra response headers, e.g. `Retry-After`. */
  headers?: Record<string, string>;
  /** For `validation_failed`: the individual problems. */
  errors?: ValidationIssue[];
  cause?: unknown;
}

/** An error meant for the client. Services return results; handlers throw this. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly errors?: ValidationIssue[];

  constructor(code: ErrorCode, detail: string, options: ApiErrorOptions = {}) {
    super(detail, { cause: options.cause });
    this.name = "ApiError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.headers = options.headers ?? {};
    this.errors = options.errors;
  }

  get detail(): string {
    return this.message;
  }
}

/** The JSON body every error response carries. */
export interface ErrorBody {
  detail: string;
  code: ErrorCode;
  request_id: string;
  errors?: ValidationIssue[];
}

/** Renders an `ApiError` as the one error response. */
export function errorResponse(error: ApiError, requestId: string): Response {
  const body: ErrorBody = { detail: error.detail, code: error.code, request_id: requestId };
  if (error.errors) body.errors = error.errors;
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { ...error.headers, "content-type": "application/json", "x-request-id": requestId },
  });
}
