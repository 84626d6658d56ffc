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
export type VerifyResult = {
    isVerified: true;
    /** A client token with state `CHALLENGE_SUCCEEDED` for the tracked action: hand it to the app's server. */
    token: string;
    attemptsRemaining: number;
} | {
    isVerified: false;
    failureReason: VerifyFailureReason;
    attemptsRemaining: number;
};
/** The error codes of the contract's table. A problem may carry another code; it is then a plain `ProblemError`. */
export type ProblemCode = "INVALID_REQUEST" | "INVALID_PHONE_NUMBER" | "UNSUPPORTED_COUNTRY" | "UNSUPPORTED_NUMBER_TYPE" | "UNAUTHORIZED" | "FORBIDDEN" | "DESTINATION_BLOCKED" | "CONFLICT" | "RATE_LIMITED" | "SEND_BUDGET_EXCEEDED" | "DELIVERY_FAILED" | "SERVICE_UNAVAILABLE";
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
export declare class ProblemError extends Error implements Problem {
    readonly status: number;
    readonly code: string;
    readonly type: string;
    readonly title: string;
    readonly detail: string;
    readonly errors: FieldError[];
    readonly retryAfter: number | undefined;
    constructor(problem: Problem);
}
/** 400 `INVALID_REQUEST`: a malformed body; `errors` names the fields. */
export declare class InvalidRequestError extends ProblemError {
}
/** 400 `INVALID_PHONE_NUMBER`: not a canonical E.164 number, or not a valid one. */
export declare class InvalidPhoneNumberError extends ProblemError {
}
/** 400 `UNSUPPORTED_COUNTRY`: the number's region is not allowed. */
export declare class UnsupportedCountryError extends ProblemError {
}
/** 400 `UNSUPPORTED_NUMBER_TYPE`: landline, VoIP, premium rate and other numbers that get no SMS under policy. */
export declare class UnsupportedNumberTypeError extends ProblemError {
}
/** 401 `UNAUTHORIZED`: the client token is missing, malformed, expired or unknown; a new `/v1/track` is needed. */
export declare class UnauthorizedError extends ProblemError {
}
/** 403 `FORBIDDEN`: e.g. an enrollment change without a fresh proof, or with a proof already used. */
export declare class ForbiddenError extends ProblemError {
}
/** 403 `DESTINATION_BLOCKED`: the fraud guard refuses this number; nothing was sent. */
export declare class DestinationBlockedError extends ProblemError {
}
/** 409 `CONFLICT`: e.g. `sms.challenge` for a user with no enrolled number (enroll instead). */
export declare class ConflictError extends ProblemError {
}
/** 429 `RATE_LIMITED`: a send, resend or verify limit, or a lockout; retry after `retryAfter` seconds. */
export declare class RateLimitedError extends ProblemError {
}
/** 429 `SEND_BUDGET_EXCEEDED`: the app's or the stack's SMS budget is spent until `retryAfter` seconds from now. */
export declare class SendBudgetExceededError extends ProblemError {
}
/** 502 `DELIVERY_FAILED`: every SMS provider failed. */
export declare class DeliveryFailedError extends ProblemError {
}
/** 503 `SERVICE_UNAVAILABLE`: nothing happened; the request may be retried. */
export declare class ServiceUnavailableError extends ProblemError {
}
/**
 * An answer that is not what the contract says: a body that is not JSON (a proxy's HTML page), an error
 * without a problem document, or a 2xx body of the wrong shape. `code` is `UNEXPECTED_RESPONSE`.
 */
export declare class UnexpectedResponseError extends ProblemError {
}
/** The request did not complete (offline, DNS, CORS refusal, connection reset). Nothing is known of its effect. */
export declare class NetworkError extends Error {
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
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
        enroll(input: {
            phoneNumber: string;
        }): Promise<ChallengeSent>;
        /**
         * Send a code to the enrolled number. Inside the resend cooldown it sends nothing and answers the same
         * pending challenge, so a reloaded page calls it again and carries on. `ConflictError` when not enrolled.
         */
        challenge(): Promise<ChallengeSent>;
        /** Check a code. The code is a string so that leading zeros are kept. */
        verify(input: {
            code: string;
        }): Promise<VerifyResult>;
    };
}
/** Create a client of the API at `options.baseUrl`; call `setToken` before the first request. */
export declare function createClient(options: ClientOptions): SmsOtpClient;
