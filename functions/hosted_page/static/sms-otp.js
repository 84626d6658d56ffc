/**
 * Browser client of the SMS OTP service's client endpoints (`/v1/client/sms/*`, docs/api.md "Client
 * endpoints (client token)"). No runtime dependencies: one ES module the hosted challenge page loads as a static
 * asset, and any app page can import.
 *
 * The client token (from `/v1/track`, or the `CHALLENGE_SUCCEEDED` token of a verify) only ever travels in
 * the `Authorization` header: never in a URL, never in a cookie (`credentials: "omit"`).
 */
/** An error answer of the API. Subclasses name the contract's codes; `instanceof ProblemError` catches all. */
export class ProblemError extends Error {
    status;
    code;
    type;
    title;
    detail;
    errors;
    retryAfter;
    constructor(problem) {
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
export class InvalidRequestError extends ProblemError {
}
/** 400 `INVALID_PHONE_NUMBER`: not a canonical E.164 number, or not a valid one. */
export class InvalidPhoneNumberError extends ProblemError {
}
/** 400 `UNSUPPORTED_COUNTRY`: the number's region is not allowed. */
export class UnsupportedCountryError extends ProblemError {
}
/** 400 `UNSUPPORTED_NUMBER_TYPE`: landline, VoIP, premium rate and other numbers that get no SMS under policy. */
export class UnsupportedNumberTypeError extends ProblemError {
}
/** 401 `UNAUTHORIZED`: the client token is missing, malformed, expired or unknown; a new `/v1/track` is needed. */
export class UnauthorizedError extends ProblemError {
}
/** 403 `FORBIDDEN`: e.g. an enrollment change without a fresh proof, or with a proof already used. */
export class ForbiddenError extends ProblemError {
}
/** 403 `DESTINATION_BLOCKED`: the fraud guard refuses this number; nothing was sent. */
export class DestinationBlockedError extends ProblemError {
}
/** 409 `CONFLICT`: e.g. `sms.challenge` for a user with no enrolled number (enroll instead). */
export class ConflictError extends ProblemError {
}
/** 429 `RATE_LIMITED`: a send, resend or verify limit, or a lockout; retry after `retryAfter` seconds. */
export class RateLimitedError extends ProblemError {
}
/** 429 `SEND_BUDGET_EXCEEDED`: the app's or the stack's SMS budget is spent until `retryAfter` seconds from now. */
export class SendBudgetExceededError extends ProblemError {
}
/** 502 `DELIVERY_FAILED`: every SMS provider failed. */
export class DeliveryFailedError extends ProblemError {
}
/** 503 `SERVICE_UNAVAILABLE`: nothing happened; the request may be retried. */
export class ServiceUnavailableError extends ProblemError {
}
/**
 * An answer that is not what the contract says: a body that is not JSON (a proxy's HTML page), an error
 * without a problem document, or a 2xx body of the wrong shape. `code` is `UNEXPECTED_RESPONSE`.
 */
export class UnexpectedResponseError extends ProblemError {
}
/** The request did not complete (offline, DNS, CORS refusal, connection reset). Nothing is known of its effect. */
export class NetworkError extends Error {
    constructor(message, options) {
        super(message, options);
        this.name = "NetworkError";
    }
}
const PROBLEM_CLASSES = {
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
/** Create a client of the API at `options.baseUrl`; call `setToken` before the first request. */
export function createClient(options) {
    const base = parseBaseUrl(options.baseUrl);
    const fetchFunction = options.fetch;
    let token;
    async function post(path, body) {
        if (token === undefined) {
            throw new TypeError("no client token: call setToken(token) first");
        }
        const headers = {
            Accept: "application/json, application/problem+json",
            Authorization: `Bearer ${token}`,
        };
        const init = {
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
        let response;
        let text;
        try {
            // Called as a plain function, or as a method of globalThis: browsers refuse fetch on any other `this`.
            response = await (fetchFunction ? fetchFunction(base + path, init) : globalThis.fetch(base + path, init));
            text = await response.text();
        }
        catch (cause) {
            throw new NetworkError(`request to ${path} failed`, { cause });
        }
        const json = parseJson(text);
        if (!response.ok) {
            throw problemError(response, json);
        }
        return { status: response.status, json };
    }
    function unexpected(path, status) {
        return unexpectedResponse(status, "", `the answer of ${path} is not the contract's`, undefined);
    }
    async function challengeSent(path, body) {
        const { status, json } = await post(path, body);
        if (!isRecord(json) ||
            typeof json.challengeId !== "string" ||
            typeof json.phoneMask !== "string" ||
            typeof json.expiresAt !== "string" ||
            typeof json.resendAvailableAt !== "string") {
            throw unexpected(path, status);
        }
        const { challengeId, phoneMask, expiresAt, resendAvailableAt } = json;
        return { challengeId, phoneMask, expiresAt, resendAvailableAt };
    }
    return {
        setToken(value) {
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
function parseBaseUrl(baseUrl) {
    // Every request URL is built from this one: refusing a query, a fragment or user info keeps anything
    // secret (the hosted page's `#token=...`) out of request URLs and logs.
    if (typeof baseUrl !== "string" || /[?#@]/.test(baseUrl)) {
        throw new TypeError("baseUrl must be an http(s) URL without query, fragment or user info");
    }
    let url;
    try {
        url = new URL(baseUrl);
    }
    catch {
        throw new TypeError("baseUrl must be an absolute http(s) URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
        throw new TypeError("baseUrl must be an absolute http(s) URL");
    }
    return url.origin + url.pathname.replace(/\/+$/, "");
}
function problemError(response, json) {
    const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
    if (!isRecord(json) || typeof json.code !== "string") {
        const detail = `HTTP ${response.status} without a problem document`;
        return unexpectedResponse(response.status, response.statusText, detail, retryAfter);
    }
    const problem = {
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
        ? PROBLEM_CLASSES[problem.code]
        : ProblemError;
    return new ProblemClass(problem);
}
function unexpectedResponse(status, title, detail, retryAfter) {
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
function parseRetryAfter(value) {
    const trimmed = value?.trim() ?? "";
    return /^\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}
function parseJson(text) {
    try {
        return JSON.parse(text);
    }
    catch {
        return undefined;
    }
}
function isRecord(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}
function isFieldError(value) {
    return isRecord(value) && typeof value.field === "string" && typeof value.message === "string";
}
function isFailureReason(value) {
    return value === "CODE_INVALID_OR_EXPIRED" || value === "MAX_ATTEMPTS_EXCEEDED";
}
function requireString(name, value) {
    // Plain-JS callers: a number would lose a code's leading zeros, and anything else is a bug of the page.
    if (typeof value !== "string") {
        throw new TypeError(`${name} must be a string`);
    }
}
