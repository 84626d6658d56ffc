// The hosted challenge page (docs/api.md "Hosted challenge page"). Plain ES module, no dependencies but the
// stack's own browser client. The client token arrives in the URL fragment, moves to this tab's
// sessionStorage and leaves the address bar at once; it is only ever sent in the Authorization header.
// A new link opened in the same tab changes the fragment only: its token takes over the same way (hashchange).
import {
  createClient,
  ConflictError,
  DestinationBlockedError,
  InvalidPhoneNumberError,
  InvalidRequestError,
  RateLimitedError,
  SendBudgetExceededError,
  UnauthorizedError,
  UnsupportedCountryError,
  UnsupportedNumberTypeError,
} from "./sms-otp.js";

const STORAGE_KEY = "sms-otp:token";
const $ = (id) => document.getElementById(id);

const strings = {};
for (const item of document.querySelectorAll("#strings [data-key]")) {
  strings[item.dataset.key] = item.textContent;
}
const t = (key, values = {}) =>
  (strings[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));

const status = $("status");
function say(key, values) {
  status.textContent = t(key, values);
}

/** The claims of a JWT, unverified: the page only needs to know its state, expiry and hand-off claims. */
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

const fragmentToken = () => new URLSearchParams(location.hash.slice(1)).get("token");

function takeToken() {
  const fromFragment = fragmentToken();
  if (fromFragment) {
    sessionStorage.setItem(STORAGE_KEY, fromFragment);
    // Drop the fragment from the address bar and the history entry, so it is not shared or bookmarked.
    history.replaceState(history.state, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(STORAGE_KEY);
}

const expired = (claims) => !claims || typeof claims.exp !== "number" || claims.exp * 1000 <= Date.now();

function endSession(key) {
  sessionStorage.removeItem(STORAGE_KEY);
  clearInterval(countdownTimer);
  webOtp?.abort();
  $("phone-form").hidden = true;
  $("code-form").hidden = true;
  say(key);
}

// The API is the page's own origin and stage: <base>/v1/hosted/challenge.
const baseUrl = new URL("../../", location.href).href.replace(/\/$/, "");
const client = createClient({ baseUrl });
let challenge = null; // the pending code's send answer: {challengeId, phoneMask, expiresAt, resendAvailableAt}
let attemptsLeft = null; // the last verify answer's attemptsRemaining for that code (null: none yet)
let sendWaitUntil = 0; // a refused send's Retry-After, as a time: no send button is enabled before it
let countdownTimer = null;
let sessionTimer = null;
let webOtp = null;
// Bumped when a new link's token takes over the tab: the answers of the flow before it are dropped.
let flow = 0;

function showCode(sent) {
  if (sent.challengeId !== challenge?.challengeId) attemptsLeft = null; // a new code, with its own attempts
  challenge = sent;
  $("phone-form").hidden = true;
  $("code-form").hidden = false;
  $("code").disabled = false;
  $("verify").disabled = false;
  $("sent-to").textContent = t("code_sent", { mask: sent.phoneMask });
  $("attempts").textContent = "";
  startCountdown();
  listenForSms();
  $("code").focus();
}

/** The code form before any code of this sign-in went out (its first send was refused): only resend works. */
function showWaiting() {
  $("phone-form").hidden = true;
  $("code-form").hidden = false;
  $("sent-to").textContent = "";
  $("attempts").textContent = "";
  $("code").disabled = true;
  $("verify").disabled = true;
  startCountdown();
}

// The visible form's send button ("Send a new code", or "Send code" on the phone form) stays disabled, with a
// countdown under it, until the pending code's resendAvailableAt and a refused send's Retry-After have passed.
function startCountdown() {
  clearInterval(countdownTimer);
  const button = $("code-form").hidden ? $("send") : $("resend");
  const countdown = $("countdown");
  if (button.nextElementSibling !== countdown) button.after(countdown);
  const resendAt = challenge ? Date.parse(challenge.resendAvailableAt) : NaN;
  const until = Math.max(Number.isNaN(resendAt) ? 0 : resendAt, sendWaitUntil);
  const tick = () => {
    const seconds = Math.ceil((until - Date.now()) / 1000);
    if (seconds > 0) {
      button.disabled = true;
      countdown.textContent = t("resend_in", { seconds });
    } else {
      button.disabled = false;
      countdown.textContent = "";
      clearInterval(countdownTimer);
    }
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

function listenForSms() {
  if (!("OTPCredential" in window) || !navigator.credentials) return;
  webOtp?.abort();
  webOtp = new AbortController();
  navigator.credentials
    .get({ otp: { transport: ["sms"] }, signal: webOtp.signal })
    .then((credential) => {
      if (credential?.code) {
        $("code").value = credential.code;
        $("code-form").requestSubmit();
      }
    })
    .catch(() => {}); // aborted, or no SMS arrived: the field still takes a typed or pasted code
}

const rateLimited = (error) => error instanceof RateLimitedError || error instanceof SendBudgetExceededError;

function sendFailure(error) {
  if (error instanceof UnauthorizedError) return endSession("session_expired");
  if (error instanceof InvalidPhoneNumberError || error instanceof InvalidRequestError) return say("invalid_phone");
  if (
    error instanceof UnsupportedCountryError ||
    error instanceof UnsupportedNumberTypeError ||
    error instanceof DestinationBlockedError
  ) {
    return say("unsupported_phone");
  }
  if (rateLimited(error)) {
    // The wait the server asks for (Retry-After, exposed by the client): no send is offered before it.
    if (Number.isFinite(error.retryAfter) && error.retryAfter > 0) {
      sendWaitUntil = Math.max(sendWaitUntil, Date.now() + error.retryAfter * 1000);
    }
    return say("rate_limited");
  }
  return say("failed");
}

async function send(request) {
  const mine = flow;
  say("sending");
  try {
    const sent = await request();
    if (mine !== flow) return;
    sendWaitUntil = 0;
    say("sent");
    showCode(sent);
  } catch (error) {
    if (mine !== flow) return;
    sendFailure(error);
    if (error instanceof UnauthorizedError) return;
    // A failed resend leaves the pending code; the send button comes back after its countdown and any wait.
    startCountdown();
  }
}

function showPhone() {
  pickCountry();
  $("code-form").hidden = true;
  $("phone-form").hidden = false;
  status.textContent = ""; // the form's own heading says what to do
  $("phone").focus();
}

function handOff(token) {
  const claims = claimsOf(token) ?? {};
  sessionStorage.removeItem(STORAGE_KEY);
  clearInterval(countdownTimer);
  clearTimeout(sessionTimer); // the token is gone already: the page keeps saying it succeeded
  $("code-form").hidden = true;
  say("success");
  const redirect = redirectTarget(claims.rdr);
  if (redirect) {
    location.replace(redirect + "#token=" + encodeURIComponent(token));
    return;
  }
  const target = window.opener || (window.parent !== window ? window.parent : null);
  const origins = Array.isArray(claims.ori) ? claims.ori : [];
  if (!target) return;
  for (const origin of origins) {
    // Each allowed origin as targetOrigin: the browser delivers to the one that matches, never to "*".
    if (typeof origin === "string" && origin !== "*") {
      target.postMessage({ type: "sms-otp:result", token }, origin);
    }
  }
}

// The server signs only a URL of the app's own list; the browser's parse must agree that it is https (http only
// for localhost), with no user part and no fragment, or the token is not sent there.
function redirectTarget(value) {
  if (typeof value !== "string") return null;
  let url;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  const local = url.hostname === "localhost" || url.hostname === "127.0.0.1" || url.hostname === "[::1]";
  const scheme = url.protocol === "https:" || (url.protocol === "http:" && local);
  if (!scheme || url.username || url.password || url.hash) return null;
  return url.href;
}

// The country picker defaults from the browser's locale (en-US: US); a typed "+..." number always wins.
function pickCountry() {
  const region = (navigator.languages?.[0] ?? navigator.language ?? "").split("-")[1]?.toUpperCase();
  const option = region && document.querySelector(`#country option[data-region="${CSS.escape(region)}"]`);
  if (option) option.selected = true;
}

function e164(typed) {
  const digits = typed.replace(/[\s().-]/g, "");
  if (digits.startsWith("+")) return digits;
  const dial = $("country").value;
  // A national number: the calling code before it, without its trunk prefix (0 in most countries).
  return dial ? dial + digits.replace(/^0+/, "") : digits;
}

$("phone-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if ($("send").disabled) return; // a send is under way, or the server asked to wait
  const phoneNumber = e164($("phone").value);
  if (!/^\+[1-9][0-9]{6,14}$/.test(phoneNumber)) {
    say("invalid_phone");
    $("phone").focus();
    return;
  }
  $("send").disabled = true;
  send(() => client.sms.enroll({ phoneNumber }));
});

$("resend").addEventListener("click", () => {
  $("resend").disabled = true;
  send(() => client.sms.challenge());
});

$("code").addEventListener("input", () => {
  // Digits only, as a string: leading zeros stay.
  const digits = $("code").value.replace(/\D/g, "");
  if (digits !== $("code").value) $("code").value = digits;
});

// The server's failure reasons (ClientVerifyResult): MAX_ATTEMPTS_EXCEEDED once no attempt is left, and
// CODE_INVALID_OR_EXPIRED for a wrong code, and alike, with 0 attempts, for the last allowed wrong code and for a
// code no longer pending (expired, or gone). Those two are told apart by the code's expiresAt and the attempts the
// previous answer left.
function failureKey(result) {
  if (result.failureReason === "MAX_ATTEMPTS_EXCEEDED") return "exhausted";
  if (result.attemptsRemaining > 0) return "wrong";
  const expiresAt = challenge ? Date.parse(challenge.expiresAt) : NaN;
  if (Number.isNaN(expiresAt) || expiresAt <= Date.now()) return "expired";
  // One wrong code takes one attempt: from more than one left straight to none, the code is no longer pending.
  if (attemptsLeft !== null && attemptsLeft > 1) return "expired";
  return "exhausted";
}

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const verifyButton = $("verify");
  if (verifyButton.disabled) return; // a check is under way, or no code was sent yet
  webOtp?.abort();
  const code = $("code").value.replace(/\D/g, "");
  if (!code) {
    $("code").focus();
    return;
  }
  const mine = flow;
  verifyButton.disabled = true;
  say("checking");
  try {
    const result = await client.sms.verify({ code });
    if (mine !== flow) return;
    if (result.isVerified) {
      handOff(result.token);
      return;
    }
    const key = failureKey(result);
    attemptsLeft = result.attemptsRemaining;
    // An expired code's attempts are not what stopped it: the hint says nothing then.
    $("attempts").textContent = key === "expired" ? "" : t("attempts_left", { count: result.attemptsRemaining });
    say(key);
    $("code").select();
    $("code").focus();
  } catch (error) {
    if (mine !== flow) return;
    if (error instanceof UnauthorizedError) {
      endSession("session_expired");
    } else if (error instanceof RateLimitedError) {
      say("locked");
    } else {
      say("failed");
    }
  } finally {
    if (mine === flow) verifyButton.disabled = false;
  }
});

/** Forget everything of the flow before: a new link's token starts from scratch, as on a fresh load. */
function reset() {
  flow += 1;
  clearInterval(countdownTimer);
  clearTimeout(sessionTimer);
  webOtp?.abort();
  webOtp = null;
  challenge = null;
  attemptsLeft = null;
  sendWaitUntil = 0;
  $("phone-form").hidden = true;
  $("code-form").hidden = true;
  $("phone").value = "";
  $("code").value = "";
  $("code").disabled = false;
  $("verify").disabled = false;
  $("send").disabled = false;
  $("resend").disabled = true;
  for (const id of ["sent-to", "attempts", "countdown"]) $(id).textContent = "";
  say("loading");
}

function start() {
  reset();
  const mine = flow;
  const token = takeToken();
  const claims = token ? claimsOf(token) : null;
  if (!token || expired(claims)) {
    endSession("session_expired");
    return;
  }
  client.setToken(token);
  // An enrolled user's code goes out at once (inside the cooldown the server answers the pending challenge and
  // sends nothing); a user with no number yet gets a 409 and the phone form.
  say("sending");
  client.sms
    .challenge()
    .then((sent) => {
      if (mine !== flow) return;
      say("sent");
      showCode(sent);
    })
    .catch((error) => {
      if (mine !== flow) return;
      if (error instanceof ConflictError) return showPhone();
      sendFailure(error);
      // Refused for now (too many codes to the number): the code form offers a send once the wait is over.
      if (rateLimited(error)) showWaiting();
    });
  // The token dies with its tracked attempt: clear it then, whatever the page shows (setTimeout's longest delay
  // is 2^31 - 1 ms; a longer one would fire at once).
  const left = Math.min(Math.max(0, claims.exp * 1000 - Date.now()), 2 ** 31 - 1);
  sessionTimer = setTimeout(() => endSession("session_expired"), left);
}

// A new hosted link opened in this tab changes the fragment only (no load): take its token as on load.
addEventListener("hashchange", () => {
  if (fragmentToken()) start();
});

start();
