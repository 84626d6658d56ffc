// Unit tests of the built module (client/dist/sms-otp.js) against a fake fetch that records each request and
// answers canned responses. Run: npm run client:test (node --test).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  ConflictError,
  createClient,
  DeliveryFailedError,
  DestinationBlockedError,
  ForbiddenError,
  InvalidPhoneNumberError,
  InvalidRequestError,
  NetworkError,
  ProblemError,
  RateLimitedError,
  SendBudgetExceededError,
  ServiceUnavailableError,
  UnauthorizedError,
  UnexpectedResponseError,
  UnsupportedCountryError,
  UnsupportedNumberTypeError,
} from "../dist/sms-otp.js";

const BASE = "https://abc123.execute-api.us-east-1.amazonaws.com/prod";
const TOKEN = "eyJhbGciOiJFUzI1NiIsInR5cCI6InNtcy1vdHAtY2xpZW50K2p3dCJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJl";
const NEW_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdGF0ZSI6IkNIQUxMRU5HRV9TVUNDRUVERUQifQ.bmV3LXNpZ25hdHVyZQ";
const SENT = {
  challengeId: "3f1c2b9e-8a4d-4f0e-9b7a-2d6c5e1f0a93",
  phoneMask: "2671",
  expiresAt: "2026-11-21T22:10:00Z",
  resendAvailableAt: "2026-11-21T22:01:00Z",
};

/** A fetch that records every call and answers the given responses (or throws the given errors) in order. */
function fakeFetch(...answers) {
  const calls = [];
  function fetch(url, init) {
    // Browsers refuse a fetch called on another `this` ("Illegal invocation"): the client calls it plainly.
    assert.equal(this, undefined);
    calls.push({ url, init });
    const answer = answers.shift();
    assert.ok(answer !== undefined, `unexpected request to ${url}`);
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  }
  return { fetch, calls };
}

function jsonResponse(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

function problemResponse(status, code, { title = "Title", detail = "Detail.", errors, headers = {} } = {}) {
  const body = { type: "about:blank", title, status, detail, code, ...(errors ? { errors } : {}) };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/problem+json", ...headers },
  });
}

function clientWith(...answers) {
  const fake = fakeFetch(...answers);
  const client = createClient({ baseUrl: BASE, fetch: fake.fetch });
  client.setToken(TOKEN);
  return { client, calls: fake.calls };
}

const HEADERS = { Accept: "application/json, application/problem+json", Authorization: `Bearer ${TOKEN}` };
const JSON_HEADERS = { ...HEADERS, "Content-Type": "application/json" };

/** Each method with a call that sends a request, for the properties every request must have. */
const METHODS = {
  enroll: (client) => client.sms.enroll({ phoneNumber: "+14155552671" }),
  challenge: (client) => client.sms.challenge(),
  verify: (client) => client.sms.verify({ code: "012345" }),
};

describe("sms.enroll", () => {
  it("posts the phone number with the client token and answers the challenge sent", async () => {
    // Given
    const { client, calls } = clientWith(jsonResponse(200, SENT));

    // When
    const sent = await client.sms.enroll({ phoneNumber: "+14155552671" });

    // Then
    assert.deepEqual(calls, [
      {
        url: `${BASE}/v1/client/sms/enroll`,
        init: {
          method: "POST",
          headers: JSON_HEADERS,
          credentials: "omit",
          redirect: "error",
          body: '{"phoneNumber":"+14155552671"}',
        },
      },
    ]);
    assert.deepEqual(sent, SENT);
  });

  it("keeps only the contract's fields of the answer", async () => {
    const { client } = clientWith(jsonResponse(200, { ...SENT, attemptsRemaining: 3 }));

    assert.deepEqual(await client.sms.enroll({ phoneNumber: "+14155552671" }), SENT);
  });

  it("refuses a phone number that is not a string, before any request", async () => {
    const { client, calls } = clientWith();

    await assert.rejects(client.sms.enroll({ phoneNumber: 14155552671 }), TypeError);
    assert.deepEqual(calls, []);
  });
});

describe("sms.challenge", () => {
  it("posts no body and no Content-Type, and answers the challenge sent", async () => {
    const { client, calls } = clientWith(jsonResponse(200, SENT));

    const sent = await client.sms.challenge();

    assert.deepEqual(calls, [
      {
        url: `${BASE}/v1/client/sms/challenge`,
        init: { method: "POST", headers: HEADERS, credentials: "omit", redirect: "error" },
      },
    ]);
    assert.deepEqual(sent, SENT);
  });

  it("answers the same pending challenge on a repeat inside the cooldown (a reloaded page carries on)", async () => {
    // Given: the server answers a second call inside the cooldown with the first challenge, sending nothing
    const { client, calls } = clientWith(jsonResponse(200, SENT), jsonResponse(200, SENT));

    // When
    const first = await client.sms.challenge();
    const second = await client.sms.challenge();

    // Then
    assert.deepEqual(second, first);
    assert.equal(calls.length, 2);
  });
});

describe("sms.verify", () => {
  it("posts the code as a string, leading zeros kept, and answers the new token on success", async () => {
    const { client, calls } = clientWith(
      jsonResponse(200, { isVerified: true, token: NEW_TOKEN, attemptsRemaining: 0 }),
    );

    const result = await client.sms.verify({ code: "012345" });

    assert.deepEqual(calls, [
      {
        url: `${BASE}/v1/client/sms/verify`,
        init: {
          method: "POST",
          headers: JSON_HEADERS,
          credentials: "omit",
          redirect: "error",
          body: '{"code":"012345"}',
        },
      },
    ]);
    assert.deepEqual(result, { isVerified: true, token: NEW_TOKEN, attemptsRemaining: 0 });
  });

  it("answers a wrong code as a result with its reason and the attempts left, not as an error", async () => {
    const { client } = clientWith(
      jsonResponse(200, { isVerified: false, failureReason: "CODE_INVALID_OR_EXPIRED", attemptsRemaining: 2 }),
    );

    const result = await client.sms.verify({ code: "999999" });

    assert.deepEqual(result, { isVerified: false, failureReason: "CODE_INVALID_OR_EXPIRED", attemptsRemaining: 2 });
  });

  it("answers exhausted attempts", async () => {
    const { client } = clientWith(
      jsonResponse(200, { isVerified: false, failureReason: "MAX_ATTEMPTS_EXCEEDED", attemptsRemaining: 0 }),
    );

    const result = await client.sms.verify({ code: "999999" });

    assert.deepEqual(result, { isVerified: false, failureReason: "MAX_ATTEMPTS_EXCEEDED", attemptsRemaining: 0 });
  });

  it("refuses a numeric code, which would lose its leading zeros, before any request", async () => {
    const { client, calls } = clientWith();

    await assert.rejects(client.sms.verify({ code: 12345 }), TypeError);
    assert.deepEqual(calls, []);
  });

  it("does not switch to the new token by itself", async () => {
    const { client, calls } = clientWith(
      jsonResponse(200, { isVerified: true, token: NEW_TOKEN, attemptsRemaining: 0 }),
      jsonResponse(200, SENT),
    );

    await client.sms.verify({ code: "012345" });
    await client.sms.challenge();

    assert.equal(calls[1].init.headers.Authorization, `Bearer ${TOKEN}`);
  });
});

describe("tokens", () => {
  for (const [name, call] of Object.entries(METHODS)) {
    it(`${name} never puts the token or the code in the URL`, async () => {
      const { client, calls } = clientWith(jsonResponse(200, SENT), problemResponse(401, "UNAUTHORIZED"));

      await call(client).catch(() => undefined); // success or not, only the request matters here
      await call(client).catch(() => undefined);

      assert.equal(calls.length, 2);
      for (const { url, init } of calls) {
        assert.ok(!url.includes(TOKEN), url);
        assert.ok(!url.includes("012345") && !url.includes("14155552671"), url);
        assert.equal(new URL(url).search, "");
        assert.equal(new URL(url).hash, "");
        assert.equal(init.headers.Authorization, `Bearer ${TOKEN}`);
        assert.equal(init.credentials, "omit");
      }
    });

    it(`${name} refuses to send without a token`, async () => {
      const fake = fakeFetch();
      const client = createClient({ baseUrl: BASE, fetch: fake.fetch });

      await assert.rejects(call(client), { name: "TypeError", message: /setToken/ });
      assert.deepEqual(fake.calls, []);
    });
  }

  it("setToken replaces the token of the next requests", async () => {
    const { client, calls } = clientWith(jsonResponse(200, SENT), jsonResponse(200, SENT));

    await client.sms.challenge();
    client.setToken(NEW_TOKEN);
    await client.sms.challenge();

    assert.deepEqual(
      calls.map(({ init }) => init.headers.Authorization),
      [`Bearer ${TOKEN}`, `Bearer ${NEW_TOKEN}`],
    );
  });

  it("setToken refuses an empty or non-string token", () => {
    const client = createClient({ baseUrl: BASE, fetch: fakeFetch().fetch });

    assert.throws(() => client.setToken(""), TypeError);
    assert.throws(() => client.setToken(undefined), TypeError);
  });
});

describe("baseUrl", () => {
  it("accepts a stage path with trailing slashes and the local stack's origin", async () => {
    for (const [baseUrl, url] of [
      [`${BASE}/`, `${BASE}/v1/client/sms/challenge`],
      ["http://127.0.0.1:3000", "http://127.0.0.1:3000/v1/client/sms/challenge"],
    ]) {
      const fake = fakeFetch(jsonResponse(200, SENT));
      const client = createClient({ baseUrl, fetch: fake.fetch });
      client.setToken(TOKEN);

      await client.sms.challenge();

      assert.equal(fake.calls[0].url, url);
    }
  });

  it("refuses a URL with a fragment, a query or user info, which would carry secrets into request URLs", () => {
    for (const baseUrl of [
      `${BASE}/v1/hosted/challenge#token=${TOKEN}`,
      `${BASE}#`,
      `${BASE}?token=${TOKEN}`,
      "https://user:pass@example.com",
      "/prod",
      "ftp://example.com",
      "",
    ]) {
      assert.throws(() => createClient({ baseUrl }), TypeError, baseUrl);
    }
  });

  it("uses the global fetch, called on globalThis, when none is given", async (t) => {
    // Given
    const calls = [];
    t.mock.method(globalThis, "fetch", function (url) {
      assert.equal(this, globalThis);
      calls.push(url);
      return Promise.resolve(jsonResponse(200, SENT));
    });
    const client = createClient({ baseUrl: BASE });
    client.setToken(TOKEN);

    // When
    await client.sms.challenge();

    // Then
    assert.deepEqual(calls, [`${BASE}/v1/client/sms/challenge`]);
  });
});

describe("problem responses", () => {
  const CASES = [
    [400, "INVALID_REQUEST", InvalidRequestError],
    [400, "INVALID_PHONE_NUMBER", InvalidPhoneNumberError],
    [400, "UNSUPPORTED_COUNTRY", UnsupportedCountryError],
    [400, "UNSUPPORTED_NUMBER_TYPE", UnsupportedNumberTypeError],
    [401, "UNAUTHORIZED", UnauthorizedError],
    [403, "FORBIDDEN", ForbiddenError],
    [403, "DESTINATION_BLOCKED", DestinationBlockedError],
    [409, "CONFLICT", ConflictError],
    [429, "RATE_LIMITED", RateLimitedError],
    [429, "SEND_BUDGET_EXCEEDED", SendBudgetExceededError],
    [502, "DELIVERY_FAILED", DeliveryFailedError],
    [503, "SERVICE_UNAVAILABLE", ServiceUnavailableError],
  ];

  for (const [status, code, ErrorClass] of CASES) {
    for (const [name, call] of Object.entries(METHODS)) {
      it(`${name}: ${status} ${code} is a ${ErrorClass.name}`, async () => {
        const { client } = clientWith(problemResponse(status, code, { title: "A title", detail: "A detail." }));

        const error = await call(client).then(
          () => assert.fail("no error"),
          (caught) => caught,
        );

        assert.ok(error instanceof ErrorClass);
        assert.ok(error instanceof ProblemError);
        assert.ok(error instanceof Error);
        assert.equal(error.name, ErrorClass.name);
        assert.equal(error.status, status);
        assert.equal(error.code, code);
        assert.equal(error.type, "about:blank");
        assert.equal(error.title, "A title");
        assert.equal(error.detail, "A detail.");
        assert.equal(error.message, "A detail.");
        assert.deepEqual(error.errors, []);
        assert.equal(error.retryAfter, undefined);
      });
    }
  }

  it("400 INVALID_PHONE_NUMBER carries the field errors", async () => {
    const errors = [{ field: "phoneNumber", message: "Not an E.164 number." }];
    const { client } = clientWith(problemResponse(400, "INVALID_PHONE_NUMBER", { errors }));

    await assert.rejects(client.sms.enroll({ phoneNumber: "+114155552671" }), (error) => {
      assert.ok(error instanceof InvalidPhoneNumberError);
      assert.deepEqual(error.errors, errors);
      return true;
    });
  });

  it("400 INVALID_REQUEST keeps well-formed field errors only, with their two fields", async () => {
    const errors = [{ field: "code", message: "Field required.", extra: 1 }, { field: 3 }, "code", null];
    const { client } = clientWith(problemResponse(400, "INVALID_REQUEST", { errors }));

    await assert.rejects(client.sms.verify({ code: "" }), (error) => {
      assert.ok(error instanceof InvalidRequestError);
      assert.deepEqual(error.errors, [{ field: "code", message: "Field required." }]);
      return true;
    });
  });

  it("401 from an expired token is an UnauthorizedError whose message has no token", async () => {
    const { client } = clientWith(problemResponse(401, "UNAUTHORIZED", { detail: "A valid token is required." }));

    await assert.rejects(client.sms.challenge(), (error) => {
      assert.ok(error instanceof UnauthorizedError);
      assert.ok(!String(error).includes(TOKEN) && !error.stack.includes(TOKEN));
      return true;
    });
  });

  it("409 on challenge when the user is not enrolled is a ConflictError", async () => {
    const { client } = clientWith(problemResponse(409, "CONFLICT", { detail: "The user has no SMS authenticator." }));

    await assert.rejects(client.sms.challenge(), ConflictError);
  });

  it("429 carries Retry-After in seconds", async () => {
    const { client } = clientWith(problemResponse(429, "RATE_LIMITED", { headers: { "Retry-After": "30" } }));

    await assert.rejects(client.sms.verify({ code: "123456" }), (error) => {
      assert.ok(error instanceof RateLimitedError);
      assert.equal(error.retryAfter, 30);
      return true;
    });
  });

  it("429 of the spend guard carries Retry-After to the window's end", async () => {
    const { client } = clientWith(
      problemResponse(429, "SEND_BUDGET_EXCEEDED", { headers: { "Retry-After": "86400" } }),
    );

    await assert.rejects(client.sms.challenge(), { name: "SendBudgetExceededError", retryAfter: 86400 });
  });

  it("a Retry-After that is not whole seconds reads as absent", async () => {
    const { client } = clientWith(problemResponse(429, "RATE_LIMITED", { headers: { "Retry-After": "soon" } }));

    await assert.rejects(client.sms.challenge(), { name: "RateLimitedError", retryAfter: undefined });
  });

  it("a 5xx problem with a code outside the contract is a plain ProblemError", async () => {
    const { client } = clientWith(problemResponse(500, "INTERNAL_ERROR", { title: "Internal", detail: "Bug." }));

    await assert.rejects(client.sms.challenge(), (error) => {
      assert.equal(Object.getPrototypeOf(error), ProblemError.prototype);
      assert.equal(error.name, "ProblemError");
      assert.equal(error.status, 500);
      assert.equal(error.code, "INTERNAL_ERROR");
      return true;
    });
  });

  it("the status line wins over the document's status", async () => {
    const body = { type: "about:blank", title: "T", status: 200, detail: "D", code: "SERVICE_UNAVAILABLE" };
    const { client } = clientWith(jsonResponse(503, body));

    await assert.rejects(client.sms.challenge(), { name: "ServiceUnavailableError", status: 503 });
  });

  it("a code inherited from Object.prototype is no contract code", async () => {
    const { client } = clientWith(problemResponse(400, "constructor"));

    await assert.rejects(client.sms.challenge(), (error) => {
      assert.equal(Object.getPrototypeOf(error), ProblemError.prototype);
      return true;
    });
  });
});

describe("unexpected responses", () => {
  it("a 5xx with a non-JSON body is an UnexpectedResponseError with its status", async () => {
    const html = new Response("<html>Bad Gateway</html>", {
      status: 502,
      statusText: "Bad Gateway",
      headers: { "Content-Type": "text/html" },
    });
    const { client } = clientWith(html);

    await assert.rejects(client.sms.enroll({ phoneNumber: "+14155552671" }), (error) => {
      assert.ok(error instanceof UnexpectedResponseError);
      assert.ok(error instanceof ProblemError);
      assert.equal(error.status, 502);
      assert.equal(error.code, "UNEXPECTED_RESPONSE");
      assert.equal(error.title, "Bad Gateway");
      assert.deepEqual(error.errors, []);
      return true;
    });
  });

  it("an error with JSON that is no problem document keeps its status and Retry-After", async () => {
    const { client } = clientWith(jsonResponse(429, { message: "Too Many Requests" }, { "Retry-After": "1" }));

    await assert.rejects(client.sms.challenge(), {
      name: "UnexpectedResponseError",
      status: 429,
      code: "UNEXPECTED_RESPONSE",
      retryAfter: 1,
    });
  });

  it("an empty error body is an UnexpectedResponseError", async () => {
    const { client } = clientWith(new Response(null, { status: 500 }));

    await assert.rejects(client.sms.verify({ code: "123456" }), { name: "UnexpectedResponseError", status: 500 });
  });

  it("a 200 with a non-JSON body is an UnexpectedResponseError", async () => {
    const { client } = clientWith(new Response("<html>portal</html>", { status: 200 }));

    await assert.rejects(client.sms.challenge(), { name: "UnexpectedResponseError", status: 200 });
  });

  it("a 200 of the wrong shape is an UnexpectedResponseError", async () => {
    for (const [call, body] of [
      [METHODS.enroll, { ...SENT, challengeId: 7 }],
      [METHODS.challenge, [SENT]],
      [METHODS.verify, { isVerified: true, attemptsRemaining: 0 }],
      [METHODS.verify, { isVerified: false, failureReason: "SOMETHING_ELSE", attemptsRemaining: 1 }],
      [METHODS.verify, { isVerified: "true", token: NEW_TOKEN, attemptsRemaining: 0 }],
    ]) {
      const { client } = clientWith(jsonResponse(200, body));

      await assert.rejects(call(client), { name: "UnexpectedResponseError", status: 200 }, JSON.stringify(body));
    }
  });
});

describe("network failures", () => {
  for (const [name, call] of Object.entries(METHODS)) {
    it(`${name}: a failed fetch is a NetworkError with the cause, and no token in its message`, async () => {
      const cause = new TypeError("Failed to fetch");
      const { client } = clientWith(cause);

      await assert.rejects(call(client), (error) => {
        assert.ok(error instanceof NetworkError);
        assert.ok(!(error instanceof ProblemError));
        assert.equal(error.name, "NetworkError");
        assert.equal(error.cause, cause);
        assert.ok(!error.message.includes(TOKEN));
        return true;
      });
    });
  }

  it("a body cut off while reading is a NetworkError", async () => {
    const cut = new Response(
      new ReadableStream({
        start(controller) {
          controller.error(new TypeError("terminated"));
        },
      }),
      { status: 200 },
    );
    const { client } = clientWith(cut);

    await assert.rejects(client.sms.challenge(), NetworkError);
  });
});
