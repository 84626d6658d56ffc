// The Authsignal facade driven by the real npm `@authsignal/node` SDK against the local stack (Node's test runner).
// tests/e2e/test_authsignal_node.py starts the stack, makes the apps and runs this file with:
//   STACK_URL   the stack's base URL (the SDK's apiUrl is STACK_URL + "/authsignal/v1", the README's one change)
//   API_KEY     an app's API key (the SDK's apiSecretKey); OTHER_KEY another app's
//   PHONES      fresh numbers, comma-separated, one per use below (per-number limits never touch another test)
// The browser's part of a flow (the client routes, with the client token as Bearer) is played with fetch, as
// @authsignal/browser sends it (tests/e2e/test_authsignal_browser.py runs that SDK itself in Chromium).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";

import { Authsignal, AuthsignalError } from "@authsignal/node";

const STACK_URL = required("STACK_URL");
const API_URL = `${STACK_URL}/authsignal/v1`;
const phones = required("PHONES").split(",");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this file through tests/e2e/test_authsignal_node.py`);
  return value;
}

const clients = new Map();

/** What a migrating app changes: apiUrl points at the stack's facade; the secret is an app's API key. One client
 * per key, as an app holds one (each new client adds its retry interceptor to the shared axios). */
function sdk(apiSecretKey = required("API_KEY")) {
  if (!clients.has(apiSecretKey)) clients.set(apiSecretKey, new Authsignal({ apiSecretKey, apiUrl: API_URL }));
  return clients.get(apiSecretKey);
}

function newPhone() {
  const phone = phones.shift();
  assert.ok(phone, "PHONES ran out: give the test more numbers");
  return phone;
}

const newUser = () => `e2e-node-${randomUUID()}`;

/** The SMS the local stack's outbox holds for `phone`. */
async function outbox(phone) {
  const answer = await fetch(`${STACK_URL}/_local/outbox`);
  assert.equal(answer.status, 200);
  return (await answer.json()).messages.filter((message) => message.to === phone).map((message) => message.body);
}

/** The code of the `count`-th SMS to `phone` (the newest once there are `count`), waiting for it to arrive. */
async function code(phone, count = 1) {
  const deadline = Date.now() + 10_000;
  let messages = await outbox(phone);
  while (messages.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    messages = await outbox(phone);
  }
  assert.ok(messages.length >= count, `no SMS #${count} to the test number`);
  const found = /\b(\d{4,10})\b/.exec(messages.at(-1));
  assert.ok(found, "the SMS holds no code");
  return found[1];
}

function wrong(right) {
  return String((Number(right) + 1) % 10 ** right.length).padStart(right.length, "0");
}

/** A call of a client route, as the browser and mobile SDKs make it: the client token as Bearer. */
async function client(path, token, body) {
  const answer = await fetch(`${API_URL}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(answer.headers.get("content-type"), "application/json");
  return { status: answer.status, body: await answer.json() };
}

/** The AuthsignalError the SDK throws for `call`, checked to be one with `statusCode` and `errorCode`. */
async function refused(call, statusCode, errorCode) {
  let thrown;
  try {
    await call();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof AuthsignalError, `expected an AuthsignalError, got ${thrown}`);
  assert.equal(thrown.statusCode, statusCode, thrown.message);
  assert.equal(thrown.errorCode, errorCode, thrown.message);
  assert.ok(thrown.errorDescription, "the error says why");
  return thrown;
}

describe("track, the client routes and validateChallenge", () => {
  it("a new user enrolls in the browser and the server validates the result once", async () => {
    const authsignal = sdk();
    const userId = newUser();
    const phoneNumber = newPhone();

    // Given a track for a user with no SMS authenticator
    const tracked = await authsignal.track({ userId, action: "signIn", attributes: { ipAddress: "203.0.113.9" } });
    assert.equal(tracked.isEnrolled, false);
    assert.deepEqual(tracked.allowedVerificationMethods, ["SMS"]);
    assert.ok(tracked.token && tracked.idempotencyKey);

    // When the browser enrolls a number and verifies the code it received
    const enrolled = await client("/client/user-authenticators/sms", tracked.token, { phoneNumber });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    const verified = await client("/client/verify/sms", tracked.token, { verificationCode: await code(phoneNumber) });
    assert.equal(verified.body.isVerified, true);

    // Then the server validates the result once; the action succeeded and the user has the SMS authenticator
    const valid = await authsignal.validateChallenge({ token: verified.body.accessToken, action: "signIn", userId });
    assert.equal(valid.isValid, true);
    assert.equal(valid.userId, userId);
    assert.equal(valid.action, "signIn"); // the SDK renames the answer's actionCode
    assert.equal(valid.state, "CHALLENGE_SUCCEEDED");
    assert.equal(valid.idempotencyKey, tracked.idempotencyKey);
    const again = await authsignal.validateChallenge({ token: verified.body.accessToken });
    assert.equal(again.isValid, false);
    assert.ok(again.error);
    const [authenticator, ...others] = await authsignal.getAuthenticators({ userId });
    assert.deepEqual(others, []);
    assert.equal(authenticator.verificationMethod, "SMS");
    const user = await authsignal.getUser({ userId });
    assert.equal(user.isEnrolled, true);
    assert.deepEqual(user.enrolledVerificationMethods, ["SMS"]);
    // Only the last four digits, as natively
    assert.ok(!JSON.stringify([authenticator, user]).includes(phoneNumber));
    assert.ok(user.phoneNumber.endsWith(phoneNumber.slice(-4)));
  });

  it("a token validates only for its user and its action, and a forged one never", async () => {
    const authsignal = sdk();
    const userId = newUser();
    const phoneNumber = newPhone();
    // A track's token of an allowed action proves no challenge: it never validates as a success
    const tracked = await authsignal.track({ userId, action: "signIn" });
    assert.equal(tracked.state, "ALLOW");
    const allowed = await authsignal.validateChallenge({ token: tracked.token });
    assert.equal(allowed.isValid, false);
    assert.equal(allowed.state, "ALLOW");

    // Given the token of a verified and claimed challenge
    const { challengeId } = await authsignal.challenge({ verificationMethod: "SMS", action: "signIn", phoneNumber });
    assert.equal(
      (await authsignal.verify({ challengeId, verificationCode: await code(phoneNumber) })).isVerified,
      true,
    );
    const { token } = await authsignal.claimChallenge({ challengeId, userId });

    // Another user's or another action's check refuses it without spending it, a forged copy is refused, another
    // app's key cannot validate it; then its own user validates it once
    assert.equal((await authsignal.validateChallenge({ token, userId: newUser() })).isValid, false);
    assert.equal((await authsignal.validateChallenge({ token, action: "withdraw" })).isValid, false);
    assert.equal((await authsignal.validateChallenge({ token: `${token.slice(0, -6)}AAAAAA` })).isValid, false);
    assert.equal((await sdk(required("OTHER_KEY")).validateChallenge({ token })).isValid, false);
    const valid = await authsignal.validateChallenge({ token, action: "signIn", userId });
    assert.equal(valid.isValid, true);
    assert.equal(valid.state, "CHALLENGE_SUCCEEDED");
    assert.equal(valid.verificationMethod, "SMS");

    // A token is required
    await refused(() => authsignal.validateChallenge({}), 400, "invalid_request");
  });
});

describe("getAction and updateAction", () => {
  it("an enrolled user's action is challenged, succeeds only through its code, and cannot be set by hand", async () => {
    const authsignal = sdk();
    const userId = newUser();
    const phoneNumber = newPhone();
    await authsignal.enrollVerifiedAuthenticator({ userId, attributes: { verificationMethod: "SMS", phoneNumber } });

    // Given a tracked action that needs a challenge
    const tracked = await authsignal.track({ userId, action: "signIn" });
    assert.equal(tracked.state, "CHALLENGE_REQUIRED");
    assert.equal(tracked.isEnrolled, true);
    assert.equal(tracked.defaultVerificationMethod, "SMS");
    const key = { userId, action: "signIn", idempotencyKey: tracked.idempotencyKey };
    const pending = await authsignal.getAction(key);
    assert.equal(pending.state, "CHALLENGE_REQUIRED");
    assert.ok(!Number.isNaN(Date.parse(pending.createdAt)));

    // updateAction takes the state the action has, and refuses any other: only a verified code completes it
    assert.equal(
      (await authsignal.updateAction({ ...key, attributes: { state: "CHALLENGE_REQUIRED" } })).state,
      "CHALLENGE_REQUIRED",
    );
    await refused(
      () => authsignal.updateAction({ ...key, attributes: { state: "CHALLENGE_SUCCEEDED" } }),
      400,
      "invalid_request",
    );
    await refused(
      () => authsignal.updateAction({ ...key, attributes: { state: "NOT_A_STATE" } }),
      400,
      "invalid_request",
    );
    assert.equal((await authsignal.getAction(key)).state, "CHALLENGE_REQUIRED");
    assert.equal((await authsignal.validateChallenge({ token: tracked.token })).isValid, false);

    // When the browser challenges and verifies, the action has succeeded
    const challenged = await client("/client/challenge/sms", tracked.token);
    assert.equal(challenged.status, 200, JSON.stringify(challenged.body));
    assert.ok(challenged.body.challengeId);
    const verified = await client("/client/verify/sms", tracked.token, { verificationCode: await code(phoneNumber) });
    assert.equal(verified.body.isVerified, true);
    const done = await authsignal.getAction(key);
    assert.equal(done.state, "CHALLENGE_SUCCEEDED");
    assert.equal(done.verificationMethod, "SMS");
    assert.ok(Date.parse(done.stateUpdatedAt) >= Date.parse(done.createdAt));
  });

  it("an action of another user, another name or another app is not found", async () => {
    const authsignal = sdk();
    const userId = newUser();
    const tracked = await authsignal.track({ userId, action: "signIn" });
    const key = { userId, action: "signIn", idempotencyKey: tracked.idempotencyKey };
    await refused(() => authsignal.getAction({ ...key, userId: newUser() }), 404, "not_found");
    await refused(() => authsignal.getAction({ ...key, action: "withdraw" }), 404, "not_found");
    await refused(() => authsignal.getAction({ ...key, idempotencyKey: randomUUID() }), 404, "not_found");
    await refused(() => sdk(required("OTHER_KEY")).getAction(key), 404, "not_found");
    await refused(
      () => authsignal.updateAction({ ...key, userId: newUser(), attributes: { state: "ALLOW" } }),
      404,
      "not_found",
    );
  });
});

describe("users and authenticators", () => {
  it("enrolls a verified number, replaces it, deletes it, and forgets the user", async () => {
    const authsignal = sdk();
    const userId = newUser();
    const first = newPhone();
    const second = newPhone();

    // A new user is a user without an authenticator
    const unknown = await authsignal.getUser({ userId });
    assert.equal(unknown.isEnrolled, false);
    assert.deepEqual(await authsignal.getAuthenticators({ userId }), []);

    // enrollVerifiedAuthenticator: a number verified elsewhere, answered masked
    const enrolled = await authsignal.enrollVerifiedAuthenticator({
      userId,
      attributes: { verificationMethod: "SMS", phoneNumber: first },
    });
    assert.equal(enrolled.authenticator.userId, userId);
    assert.equal(enrolled.authenticator.verificationMethod, "SMS");
    assert.ok(enrolled.authenticator.phoneNumber.endsWith(first.slice(-4)));
    assert.ok(!JSON.stringify(enrolled).includes(first));

    // updateUser with a verified number replaces the user's number; other attributes are refused
    const updated = await authsignal.updateUser({
      userId,
      attributes: { phoneNumber: second, phoneNumberVerified: true },
    });
    assert.ok(updated.phoneNumber.endsWith(second.slice(-4)));
    assert.ok(!JSON.stringify(updated).includes(second));
    await refused(
      () => authsignal.updateUser({ userId, attributes: { email: "a@example.com" } }),
      400,
      "invalid_request",
    );
    await refused(
      () => authsignal.updateUser({ userId, attributes: { phoneNumber: first } }),
      400,
      "invalid_request",
    );
    const [current] = await authsignal.getAuthenticators({ userId });
    assert.ok(current.phoneNumber.endsWith(second.slice(-4)));
    assert.equal((await authsignal.getUser({ userId })).isEnrolled, true);

    // deleteAuthenticator: the authenticator is gone, and an unknown one is a 404
    await authsignal.deleteAuthenticator({ userId, userAuthenticatorId: current.userAuthenticatorId });
    assert.deepEqual(await authsignal.getAuthenticators({ userId }), []);
    await refused(
      () => authsignal.deleteAuthenticator({ userId, userAuthenticatorId: current.userAuthenticatorId }),
      404,
      "not_found",
    );

    // deleteUser: what this service knows of the user (its SMS authenticator) is deleted
    await authsignal.enrollVerifiedAuthenticator({
      userId,
      attributes: { verificationMethod: "SMS", phoneNumber: first },
    });
    await authsignal.deleteUser({ userId });
    assert.equal((await authsignal.getUser({ userId })).isEnrolled, false);
    assert.deepEqual(await authsignal.getAuthenticators({ userId }), []);
  });

  it("another app's key sees none of this app's users, and a factor this service lacks is a clear 400", async () => {
    const authsignal = sdk();
    const other = sdk(required("OTHER_KEY"));
    const userId = newUser();
    const phoneNumber = newPhone();
    const { authenticator } = await authsignal.enrollVerifiedAuthenticator({
      userId,
      attributes: { verificationMethod: "SMS", phoneNumber },
    });

    assert.deepEqual(await other.getAuthenticators({ userId }), []);
    assert.equal((await other.getUser({ userId })).isEnrolled, false);
    await refused(
      () => other.deleteAuthenticator({ userId, userAuthenticatorId: authenticator.userAuthenticatorId }),
      404,
      "not_found",
    );
    await other.deleteUser({ userId });
    assert.equal((await authsignal.getAuthenticators({ userId })).length, 1);

    const passkey = await refused(
      () => authsignal.enrollVerifiedAuthenticator({ userId, attributes: { verificationMethod: "PASSKEY" } }),
      400,
      "invalid_request",
    );
    assert.match(passkey.errorDescription, /PASSKEY|SMS/);
    await refused(
      () =>
        authsignal.enrollVerifiedAuthenticator({
          userId,
          attributes: { verificationMethod: "SMS", phoneNumber: "12" },
        }),
      400,
      "invalid_request",
    );
  });
});

describe("the sign-in trio: challenge, verify, claimChallenge", () => {
  it("a wrong code counts, the right one verifies once, and its claim issues one token that validates once", async () => {
    const authsignal = sdk();
    const userId = newUser();
    const phoneNumber = newPhone();

    // Given a challenge sent to a number
    const challenged = await authsignal.challenge({ verificationMethod: "SMS", action: "signIn", phoneNumber });
    assert.ok(challenged.challengeId);
    assert.equal(challenged.idempotencyKey, challenged.challengeId);
    // expiresAt in Unix seconds, a few minutes ahead
    const ahead = challenged.expiresAt - Date.now() / 1000;
    assert.ok(ahead > 30 && ahead < 3600, `expiresAt ${challenged.expiresAt}`);
    const right = await code(phoneNumber);

    // When a wrong code, then the right one, is verified
    const missed = await authsignal.verify({ challengeId: challenged.challengeId, verificationCode: wrong(right) });
    assert.equal(missed.isVerified, false);
    assert.ok(missed.failureReason);
    const verified = await authsignal.verify({ challengeId: challenged.challengeId, verificationCode: right });
    assert.equal(verified.isVerified, true);
    assert.equal(verified.verificationMethod, "SMS");
    // Single use: the same code again verifies nothing
    const replayed = await authsignal.verify({ challengeId: challenged.challengeId, verificationCode: right });
    assert.equal(replayed.isVerified, false);

    // Then the user claims it once: one token, which validates once, for that user
    const claimed = await authsignal.claimChallenge({ challengeId: challenged.challengeId, userId });
    assert.equal(claimed.verificationMethod, "SMS");
    await refused(() => authsignal.claimChallenge({ challengeId: challenged.challengeId, userId }), 409, "conflict");
    const valid = await authsignal.validateChallenge({ token: claimed.token, userId });
    assert.equal(valid.isValid, true);
    assert.equal(valid.userId, userId);
    assert.equal((await authsignal.validateChallenge({ token: claimed.token })).isValid, false);
  });

  it("the native rules hold: attempts run out, an unverified challenge cannot be claimed, other apps see nothing", async () => {
    const authsignal = sdk();
    const phoneNumber = newPhone();
    const challenged = await authsignal.challenge({ verificationMethod: "SMS", action: "signIn", phoneNumber });
    const right = await code(phoneNumber);

    // Another app's key cannot verify or claim this app's challenge
    const other = sdk(required("OTHER_KEY"));
    // (an unknown challenge answers as a wrong code does, natively: nothing tells it exists)
    const elsewhere = await other.verify({ challengeId: challenged.challengeId, verificationCode: right });
    assert.equal(elsewhere.isVerified, false);
    await refused(
      () => other.claimChallenge({ challengeId: challenged.challengeId, userId: newUser() }),
      409,
      "conflict",
    );
    // Nor can anyone claim it before its code is verified
    await refused(
      () => authsignal.claimChallenge({ challengeId: challenged.challengeId, userId: newUser() }),
      409,
      "conflict",
    );
    await refused(
      () =>
        authsignal.claimChallenge({
          challengeId: challenged.challengeId,
          userId: newUser(),
          skipVerificationCheck: true,
        }),
      400,
      "invalid_request",
    );

    // Wrong codes use up the attempts; after them even the right code is refused
    let answer;
    for (let attempt = 0; attempt < 10; attempt += 1) {
      answer = await authsignal.verify({ challengeId: challenged.challengeId, verificationCode: wrong(right) });
      assert.equal(answer.isVerified, false);
      if (answer.failureReason === "MAX_ATTEMPTS_EXCEEDED") break;
    }
    assert.equal(answer.failureReason, "MAX_ATTEMPTS_EXCEEDED");
    const late = await authsignal.verify({ challengeId: challenged.challengeId, verificationCode: right });
    assert.equal(late.isVerified, false);
  });

  it("bad input and other factors are clear 4xx errors in Authsignal's shape", async () => {
    const authsignal = sdk();
    // The e2e stack blocks France: a French number is refused, and nothing is sent
    await refused(
      () => authsignal.challenge({ verificationMethod: "SMS", action: "signIn", phoneNumber: "+33612345678" }),
      400,
      "invalid_request",
    );
    await refused(
      () => authsignal.challenge({ verificationMethod: "SMS", action: "signIn", phoneNumber: "not a number" }),
      400,
      "invalid_request",
    );
    await refused(
      () => authsignal.challenge({ verificationMethod: "EMAIL_OTP", email: "a@example.com" }),
      400,
      "invalid_request",
    );
    await refused(
      () => authsignal.challenge({ verificationMethod: "WHATSAPP", phoneNumber: newPhone() }),
      400,
      "invalid_request",
    );
    assert.equal(
      (await authsignal.verify({ challengeId: randomUUID(), verificationCode: "123456" })).isVerified,
      false,
    );
    await refused(
      () => authsignal.verify({ challengeId: randomUUID(), verificationCode: "" }),
      400,
      "invalid_request",
    );
  });

  it("a key that is no app's is refused on every route", async () => {
    const stranger = sdk("sk_not-a-key");
    const userId = newUser();
    await refused(() => stranger.getUser({ userId }), 401, "unauthorized");
    await refused(() => stranger.track({ userId, action: "signIn" }), 401, "unauthorized");
    await refused(
      () => stranger.challenge({ verificationMethod: "SMS", action: "signIn", phoneNumber: newPhone() }),
      401,
      "unauthorized",
    );
    await refused(() => stranger.validateChallenge({ token: "x" }), 401, "unauthorized");
  });

  it("the SDK's methods of features this service does not have answer a 400 that says so", async () => {
    const authsignal = sdk();
    const userId = newUser();
    const calls = {
      queryUsers: () => authsignal.queryUsers({ phoneNumber: "+14155552671", limit: 10 }),
      queryUserActions: () => authsignal.queryUserActions({ userId, actionCodes: ["signIn"] }),
      getChallenge: () => authsignal.getChallenge({ userId, action: "signIn", verificationMethod: "SMS" }),
      createSession: () => authsignal.createSession({ clientId: "web", token: "x" }),
      validateSession: () => authsignal.validateSession({ accessToken: "x" }),
      refreshSession: () => authsignal.refreshSession({ refreshToken: "x" }),
      revokeSession: () => authsignal.revokeSession({ accessToken: "x" }),
      revokeUserSessions: () => authsignal.revokeUserSessions({ userId }),
    };
    for (const [name, call] of Object.entries(calls)) {
      const error = await refused(call, 400, "invalid_request");
      assert.match(error.errorDescription, /not available/, name);
    }
    // The key is checked first: a stranger's call is a 401 there too
    await refused(() => sdk("sk_not-a-key").queryUsers({ limit: 1 }), 401, "unauthorized");
  });
});
