// The hosted challenge page (docs/api.md "Hosted challenge page"). Plain ES module, no dependencies but the
// stack's own browser client. The client token arrives in the URL fragment, moves to this tab's
// sessionStorage and leaves the address bar at once; it is only ever sent in the Authorization header.
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

function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromFragment = fragment.get("token");
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
  $("phone-form").hidden = true;
  $("code-form").hidden = true;
  say(key);
}

// The API is the page's own origin and stage: <base>/v1/hosted/challenge.
const baseUrl = new URL("../../", location.href).href.replace(/\/$/, "");
const client = createClient({ baseUrl });
let challenge = null;
let countdownTimer = null;
let webOtp = null;

function showCode(sent) {
  challenge = sent;
  $("phone-form").hidden = true;
  $("code-form").hidden = false;
  $("sent-to").textContent = t("code_sent", { mask: sent.phoneMask });
  $("attempts").textContent = "";
  startCountdown();
  listenForSms();
  $("code").focus();
}

function startCountdown() {
  clearInterval(countdownTimer);
  const resend = $("resend");
  const tick = () => {
    const seconds = Math.ceil((Date.parse(challenge.resendAvailableAt) - Date.now()) / 1000);
    if (seconds > 0) {
      resend.disabled = true;
      $("countdown").textContent = t("resend_in", { seconds });
    } else {
      resend.disabled = false;
      $("countdown").textContent = "";
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
  if (error instanceof RateLimitedError || error instanceof SendBudgetExceededError) return say("rate_limited");
  return say("failed");
}

async function send(request) {
  say("sending");
  try {
    const sent = await request();
    say("sent");
    showCode(sent);
  } catch (error) {
    sendFailure(error);
    if (challenge) startCountdown(); // a failed resend leaves the pending code and its countdown
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
  const phoneNumber = e164($("phone").value);
  if (!/^\+[1-9][0-9]{6,14}$/.test(phoneNumber)) {
    say("invalid_phone");
    $("phone").focus();
    return;
  }
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

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  webOtp?.abort();
  const code = $("code").value.replace(/\D/g, "");
  if (!code) {
    $("code").focus();
    return;
  }
  const verifyButton = $("verify");
  verifyButton.disabled = true;
  say("checking");
  try {
    const result = await client.sms.verify({ code });
    if (result.isVerified) {
      handOff(result.token);
      return;
    }
    $("attempts").textContent = t("attempts_left", { count: result.attemptsRemaining });
    if (result.failureReason === "MAX_ATTEMPTS_EXCEEDED" || result.attemptsRemaining === 0) {
      say("exhausted");
    } else if (challenge && Date.parse(challenge.expiresAt) <= Date.now()) {
      say("expired");
    } else {
      say("wrong");
    }
    $("code").select();
    $("code").focus();
  } catch (error) {
    if (error instanceof UnauthorizedError) {
      endSession("session_expired");
    } else if (error instanceof RateLimitedError) {
      say("locked");
    } else {
      say("failed");
    }
  } finally {
    verifyButton.disabled = false;
  }
});

function start() {
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
      say("sent");
      showCode(sent);
    })
    .catch((error) => {
      if (error instanceof ConflictError) showPhone();
      else sendFailure(error);
    });
  // The token dies with its tracked attempt: clear it then, whatever the page shows.
  setTimeout(() => endSession("session_expired"), Math.max(0, claims.exp * 1000 - Date.now()));
}

start();
