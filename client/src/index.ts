/**
 * Browser client of the SMS OTP service's client endpoints (`/v1/client/sms/*`, docs/api.md "Client
 * endpoints (client token)"). No runtime dependencies: one ES module the hosted challenge page loads as a static
 * asset, and any app page can import.
 *
 * The client token (from `/v1/track`, or the `CHALLENGE_SUCCEEDED` token of a verify) only ever travels in
 * the `Authorization` header: never in a URL, never in a cookie (`credentials: "omit"`).
 */

/** Answer of `sms.enroll` and `sms.challenge` (the contract's `ClientChallengeSent`). Times are RFC 3339 UTC. */
export interface ChallengeSent {
  challengeId: string;
  /** The last four digits of the number (`2671`), for "we sent a code to the number ending in 2671". */
  phoneMask: string;
  expiresAt: string;
  /** No resend before this time: a resend countdown starts from it. */
  resendAvailableAt: string;
}

export type VerifyFailureReason = "CODE_INVALID_OR_EXPIRED" | "MAX_ATTEMPTS_EXCEEDED";

/** Answer of `sms.verify`: a wrong or expired code is an answer (200), not an error. */
export type VerifyResult =
  | {
      isVerified: true;
      /** A client token with state `CHALLENGE_SUCCEEDED` for the tracked action: hand it to the app's server. */
      token: string;
      attemptsRemaining: number;
    }
  | {
      isVerified: false;
      failureReason: VerifyFailureReason;
      attemptsRemaining: number;
    };

/** The error codes of the contract's table. A problem may carry another code; it is then a plain `ProblemError`. */
export type ProblemCode =
  | "INVALID_REQUEST"
  | "INVALID_PHONE_NUMBER"
  | "UNSUPPORTED_COUNTRY"
  | "UNSUPPORTED_NUMBER_TYPE"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "DESTINATION_BLOCKED"
  | "CONFLICT"
  | "RATE_LIMITED"
  | "SEND_BUDGET_EXCEEDED"
  | "DELIVERY_FAILED"
  | "SERVICE_UNAVAILABLE";

export interface FieldError {
  /** The request field in camelCase, e.g. `phoneNumber`. */
  field: string;
  message: string;
}

/** An RFC 9457 problem document as this service sends it, plus the `Retry-After` header. */
export interface Problem {
  status: number;
  code: string;
  type: string;
  title: string;
  detail: string;
  errors: FieldError[];
  /** Seconds from `Retry-After` (429s carry it). Cross-origin callers see it only if CORS exposes the header. */
  retryAfter: number | undefined;
}

/** An error answer of the API. Subclasses name the contract's codes; `instanceof ProblemError` catches all. */
export class ProblemError extends Error implements Problem {
  readonly status: number;
  readonly code: string;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[];
  readonly retryAfter: number | undefined;

  constructor(problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.name = new.target.name;
    this.status = problem.status;
    this.code = problem.code;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    this.errors = problem.errors;
    this.retryAfter = problem.retryAfter;
  }
}

/** 400 `INVALID_REQUEST`: a malformed body; `errors` names the fields. */
export class InvalidRequestError extends ProblemError {}
/** 400 `INVALID_PHONE_NUMBER`: not a canonical E.164 number, or not a valid one. */
export class InvalidPhoneNumberError extends ProblemError {}
/** 400 `UNSUPPORTED_COUNTRY`: the number's region is not allowed. */
export class UnsupportedCountryError extends ProblemError {}
/** 400 `UNSUPPORTED_NUMBER_TYPE`: landline, VoIP, premium rate and other numbers that get no SMS under policy. */
export class UnsupportedNumberTypeError extends ProblemError {}
/** 401 `UNAUTHORIZED`: the client token is missing, malformed, expired or unknown; a new `/v1/track` is needed. */
export class UnauthorizedError extends ProblemError {}
/** 403 `FORBIDDEN`: e.g. an enrollment change without a fresh proof, or with a proof already used. */
export class ForbiddenError extends ProblemError {}
/** 403 `DESTINATION_BLOCKED`: the fraud guard refuses this number; nothing was sent. */
export class DestinationBlockedError extends ProblemError {}
/** 409 `CONFLICT`: e.g. `sms.challenge` for a user with no enrolled number (enroll instead). */
export class ConflictError extends ProblemError {}
/** 429 `RATE_LIMITED`: a send, resend or verify limit, or a lockout; retry after `retryAfter` seconds. */
export class RateLimitedError extends ProblemError {}
/** 429 `SEND_BUDGET_EXCEEDED`: the app's or the stack's SMS budget is spent until `retryAfter` seconds from now. */
export class SendBudgetExceededError extends ProblemError {}
/** 502 `DELIVERY_FAILED`: every SMS provider failed. */
export class DeliveryFailedError extends ProblemError {}
/** 503 `SERVICE_UNAVAILABLE`: nothing happened; the request may be retried. */
export class ServiceUnavailableError extends ProblemError {}

/**
 * An answer that is not what the contract says: a body that is not JSON (a proxy's HTML page), an error
 * without a problem document, or a 2xx body of the wrong shape. `code` is `UNEXPECTED_RESPONSE`.
 */
export class UnexpectedResponseError extends ProblemError {}

/** The request did not complete (offline, DNS, CORS refusal, connection reset). Nothing is known of its effect. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NetworkError";
  }
}

const PROBLEM_CLASSES: Record<ProblemCode, new (problem: Problem) => ProblemError> = {
  INVALID_REQUEST: InvalidRequestError,
  INVALID_PHONE_NUMBER: InvalidPhoneNumberError,
  UNSUPPORTED_COUNTRY: UnsupportedCountryError,
  UNSUPPORTED_NUMBER_TYPE: UnsupportedNumberTypeError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: ForbiddenError,
  DESTINATION_BLOCKED: DestinationBlockedError,
  CONFLICT: ConflictError,
  RATE_LIMITED: RateLimitedError,
  SEND_BUDGET_EXCEEDED: SendBudgetExceededError,
  DELIVERY_FAILED: DeliveryFailedError,
  SERVICE_UNAVAILABLE: ServiceUnavailableError,
};

export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /**
   * The API's base URL: the stage URL deployed (`https://<id>.execute-api.<region>.amazonaws.com/<stage>`),
   * `http://127.0.0.1:3000` locally. No query and no fragment: a page's own `location.href` carries the token.
   */
  baseUrl: string;
  /** Defaults to the global `fetch`, looked up at each call. */
  fetch?: FetchFunction;
}

export interface SmsOtpClient {
  /** Use this client token from now on (the one from the page's fragment, or a verify's new token). */
  setToken(token: string): void;
  sms: {
    /** Send a code to a new number: allowed with no SMS authenticator yet, or with a fresh proof (a verify's token). */
    enroll(input: { phoneNumber: string }): Promise<ChallengeSent>;
    /**
     * Send a code to the enrolled number. Inside the resend cooldown it sends nothing and answers the same
     * pending challenge, so a reloaded page calls it again and carries on. `ConflictError` when not enrolled.
     */
    challenge(): Promise<ChallengeSent>;
    /** Check a code. The code is a string so that leading zeros are kept. */
    verify(input: { code: string }): Promise<VerifyResult>;
  };
}

/** Create a client of the API at `options.baseUrl`; call `setToken` before the first request. */
export function createClient(options: ClientOptions): SmsOtpClient {
  const base = parseBaseUrl(options.baseUrl);
  const fetchFunction = options.fetch;
  let token: string | undefined;

  async function post(path: string, body: object | undefined): Promise<{ status: number; json: unknown }> {
    if (token === undefined) {
      throw new TypeError("no client token: call setToken(token) first");
    }
    const headers: Record<string, string> = {
      Accept: "application/json, application/problem+json",
      Authorization: `Bearer ${token}`,
    };
    const init: RequestInit = {
      method: "POST",
      headers,
      // No cookies: the token is the only credential, and the API's CORS allows no credentials.
      credentials: "omit",
      // The API never redirects; following one would resend the code and the token somewhere else.
      redirect: "error",
    };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response: Response;
    let text: string;
    try {
      // Called as a plain function, or as a method of globalThis: browsers refuse fetch on any other `this`.
      response = await (fetchFunction ? fetchFunction(base + path, init) : globalThis.fetch(base + path, init));
      text = await response.text();
    } catch (cause) {
      throw new NetworkError(`request to ${path} failed`, { cause });
    }
    const json = parseJson(text);
    if (!response.ok) {
      throw problemError(response, json);
    }
    return { status: response.status, json };
  }

  function unexpected(path: string, status: number): UnexpectedResponseError {
    return unexpectedResponse(status, "", `the answer of ${path} is not the contract's`, undefined);
  }

  async function challengeSent(path: string, body: object | undefined): Promise<ChallengeSent> {
    const { status, json } = await post(path, body);
    if (
      !isRecord(json) ||
      typeof json.challengeId !== "string" ||
      typeof json.phoneMask !== "string" ||
      typeof json.expiresAt !== "string" ||
      typeof json.resendAvailableAt !== "string"
    ) {
      throw unexpected(path, status);
    }
    const { challengeId, phoneMask, expiresAt, resendAvailableAt } = json;
    return { challengeId, phoneMask, expiresAt, resendAvailableAt };
  }

  return {
    setToken(value: string): void {
      if (typeof value !== "string" || value === "") {
        throw new TypeError("setToken needs the client token as a non-empty string");
      }
      token = value;
    },
    sms: {
      async enroll({ phoneNumber }) {
        requireString("phoneNumber", phoneNumber);
        return await challengeSent("/v1/client/sms/enroll", { phoneNumber });
      },
      async challenge() {
        // No body at all: the endpoint refuses one. A repeat inside the cooldown answers the same challenge.
        return await challengeSent("/v1/client/sms/challenge", undefined);
      },
      async verify({ code }) {
        requireString("code", code);
        const path = "/v1/client/sms/verify";
        const { status, json } = await post(path, { code });
        if (isRecord(json) && typeof json.attemptsRemaining === "number") {
          const { attemptsRemaining } = json;
          if (json.isVerified === true && typeof json.token === "string") {
            return { isVerified: true, token: json.token, attemptsRemaining };
          }
          if (json.isVerified === false && isFailureReason(json.failureReason)) {
            return { isVerified: false, failureReason: json.failureReason, attemptsRemaining };
          }
        }
        throw unexpected(path, status);
      },
    },
  };
}

function parseBaseUrl(baseUrl: string): string {
  // Every request URL is built from this one: refusing a query, a fragment or user info keeps anything
  // secret (the hosted page's `#token=...`) out of request URLs and logs.
  if (typeof baseUrl !== "string" || /[?#@]/.test(baseUrl)) {
    throw new TypeError("baseUrl must be an http(s) URL without query, fragment or user info");
  }
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError("baseUrl must be an absolute http(s) URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError("baseUrl must be an absolute http(s) URL");
  }
  return url.origin + url.pathname.replace(/\/+$/, "");
}

function problemError(response: Response, json: unknown): ProblemError {
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  if (!isRecord(json) || typeof json.code !== "string") {
    const detail = `HTTP ${response.status} without a problem document`;
    return unexpectedResponse(response.status, response.statusText, detail, retryAfter);
  }
  const problem: Problem = {
    // The status line is the truth; the document's copy of it is informative only.
    status: response.status,
    code: json.code,
    type: typeof json.type === "string" ? json.type : "about:blank",
    title: typeof json.title === "string" ? json.title : "",
    detail: typeof json.detail === "string" ? json.detail : "",
    errors: Array.isArray(json.errors)
      ? json.errors.filter(isFieldError).map(({ field, message }) => ({ field, message }))
      : [],
    retryAfter,
  };
  const ProblemClass = Object.hasOwn(PROBLEM_CLASSES, problem.code)
    ? PROBLEM_CLASSES[problem.code as ProblemCode]
    : ProblemError;
  return new ProblemClass(problem);
}

function unexpectedResponse(
  status: number,
  title: string,
  detail: string,
  retryAfter: number | undefined,
): UnexpectedResponseError {
  return new UnexpectedResponseError({
    status,
    code: "UNEXPECTED_RESPONSE",
    type: "about:blank",
    title: title || "Unexpected response",
    detail,
    errors: [],
    retryAfter,
  });
}

/** `Retry-After` in whole seconds, as the contract sends it; anything else reads as absent. */
function parseRetryAfter(value: string | null): number | undefined {
  const trimmed = value?.trim() ?? "";
  return /^\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isFieldError(value: unknown): value is FieldError {
  return isRecord(value) && typeof value.field === "string" && typeof value.message === "string";
}

function isFailureReason(value: unknown): value is VerifyFailureReason {
  return value === "CODE_INVALID_OR_EXPIRED" || value === "MAX_ATTEMPTS_EXCEEDED";
}

function requireString(name: string, value: unknown): void {
  // Plain-JS callers: a number would lose a code's leading zeros, and anything else is a bug of the page.
  if (typeof value !== "string") {
    throw new TypeError(`${name} must be a string`);
  }
}
