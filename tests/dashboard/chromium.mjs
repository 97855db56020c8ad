// The dashboard in real headless Chromium, against the demo stack: sign in
// with the operator key, read the stage, pause it and roll its canary back
// through the forms (each with a reason), and check each result through the
// JSON API. Drives Chromium over the DevTools protocol with Node's own
// WebSocket: no npm dependency.
//
//   node chromium.mjs --url URL --key KEY --api API --stage STAGE --out DIR
//
// URL is the control API's root (ending in /); KEY the admin API key.
// Screenshots go to DIR (signin.png, stage.png, after-rollback.png).
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
for (const k of ["url", "key", "api", "stage", "out"]) {
  if (!args[k]) throw new Error(`missing --${k}`);
}
const chromiumBin = process.env.CHROMIUM || "chromium";
mkdirSync(args.out, { recursive: true });
const steps = [];
const log = (msg) => {
  steps.push(msg);
  console.log(`[dashboard] ${msg}`);
};
const fail = (msg) => {
  throw new Error(msg);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- Chromium and the DevTools protocol -----------------------------------
const profile = mkdtempSync(join(tmpdir(), "tidegate-chromium-"));
const chrome = spawn(
  chromiumBin,
  [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
    "--window-size=1200,1600", "about:blank",
  ],
  { stdio: ["ignore", "ignore", "pipe"], detached: false },
);
let chromeErr = "";
const wsUrl = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`Chromium did not start in 30 s:\n${chromeErr}`)), 30_000);
  chrome.stderr.on("data", (d) => {
    chromeErr += d;
    const m = chromeErr.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  chrome.on("exit", (code) => reject(new Error(`Chromium exited (${code}):\n${chromeErr}`)));
});

const ws = new WebSocket(wsUrl);
await new Promise((res, rej) => {
  ws.onopen = res;
  ws.onerror = rej;
});
let nextId = 1;
const pending = new Map();
const waiters = [];
ws.onmessage = (ev) => {
  const msg = JSON.parse(ev.data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    msg.error ? reject(new Error(`${msg.error.message} (${msg.error.code})`)) : resolve(msg.result);
  } else if (msg.method) {
    for (const w of [...waiters]) {
      if (w.method === msg.method) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(msg.params);
      }
    }
  }
};
let sessionId;
const send = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  });
const event = (method, ms = 20_000) =>
  new Promise((resolve, reject) => {
    const w = { method, resolve };
    waiters.push(w);
    setTimeout(() => {
      const i = waiters.indexOf(w);
      if (i >= 0) {
        waiters.splice(i, 1);
        reject(new Error(`no ${method} within ${ms} ms`));
      }
    }, ms);
  });

const { targetId } = await send("Target.createTarget", { url: "about:blank" });
({ sessionId } = await send("Target.attachToTarget", { targetId, flatten: true }));
await send("Page.enable");
await send("Runtime.enable");

const evaluate = async (expression) => {
  const r = await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) fail(`in the page: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
  return r.result.value;
};
/** Runs `action` (which navigates) and waits for the new page's load. */
const loading = async (action) => {
  const loaded = event("Page.loadEventFired");
  await action();
  await loaded;
};
const goto = (url) => loading(() => send("Page.navigate", { url }));
const screenshot = async (name) => {
  const { data } = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
  writeFileSync(join(args.out, name), Buffer.from(data, "base64"));
  log(`screenshot ${join(args.out, name)}`);
};
const text = () => evaluate("document.body.innerText");
/** Opens the command's <details>, types the reason, presses Confirm. */
const command = (name, reason) =>
  loading(() =>
    evaluate(`(() => {
      const form = document.querySelector('form[action$="/${name}"]');
      if (!form) throw new Error('no ${name} form on the page');
      form.closest('details').open = true;
      const reason = form.querySelector('input[name=reason]');
      reason.focus();
      reason.value = ${JSON.stringify(reason)};
      form.querySelector('button[type=submit]').click();
    })()`),
  );

// --- The JSON API, as the CLI sees it --------------------------------------
const api = async (path) => {
  const r = await fetch(new URL(path, args.url), { headers: { "x-api-key": args.key } });
  if (!r.ok) fail(`GET ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};
const stagePath = `stages/${encodeURIComponent(args.api)}/${encodeURIComponent(args.stage)}`;

// --- The spec ---------------------------------------------------------------
let ok = false;
try {
  // 1. Unauthenticated: the dashboard sends the browser to sign in.
  await goto(args.url);
  const at = await evaluate("location.pathname");
  if (!at.endsWith("/signin")) fail(`expected the sign-in page, got ${at}`);
  if (!(await evaluate("!!document.querySelector('label[for=credential]')"))) fail("the credential field has no label");
  log(`not signed in: sent to ${at}`);
  await screenshot("signin.png");

  // 2. Sign in with the admin key: a session cookie the page cannot read.
  await loading(() =>
    evaluate(`(() => {
      document.getElementById('credential').value = ${JSON.stringify(args.key)};
      document.querySelector('form').submit();
    })()`),
  );
  let body = await text();
  if (!body.includes("Signed in as")) fail(`sign-in failed:\n${body.slice(0, 600)}`);
  if ((await evaluate("document.cookie")).includes("tidegate_session")) fail("the session cookie is readable by scripts");
  log("signed in (HttpOnly session cookie)");

  // 3. Read the stage.
  const before = await api(stagePath);
  await loading(() => evaluate(`document.querySelector('a[href*="ui/"]').click()`));
  body = await text();
  if (!body.includes(`${args.api} / ${args.stage}`)) fail(`the stage page does not name the stage:\n${body.slice(0, 600)}`);
  if (before.canary && !body.includes(before.canary.deployment_id)) fail("the stage page does not show the canary");
  if (!(await evaluate("!!document.querySelector('svg[role=img] polyline, svg[role=img] circle') || !!document.querySelector('svg[role=img]')")))
    fail("no chart");
  // The edge's live figures: the panel, and the JSON it is drawn from (the demo wires the edge's URL and key).
  if (!(await evaluate("!!document.getElementById('h-edge')"))) fail("no 'Live at the edge' panel");
  const why = await evaluate("(document.getElementById('edge-why') || {}).textContent || ''");
  if (why) fail(`the edge panel has no figures: ${why}`);
  const edge = await api(`${stagePath}/edge`);
  if (typeof edge.window_s !== "number") fail(`not the edge's figures: ${JSON.stringify(edge).slice(0, 300)}`);
  const served = (edge.releases || []).reduce((n, r) => n + r.figures.requests, 0);
  log(`edge panel: ${served} answers over the edge's ${edge.window_s} s window, verdict ${edge.judgement ? edge.judgement.verdict.status : "none yet"}`);
  log(`stage page: serving ${before.deployment_id}, canary ${before.canary ? before.canary.deployment_id + " at " + before.canary.percent_traffic + " %" : "none"}`);

  // 4. Pause with a reason; the JSON API shows the pause, by the signed-in identity.
  const pauseReason = `chromium pause ${Date.now()}`;
  await command("pause", pauseReason);
  body = await text();
  if (!body.includes("pause:")) fail(`no notice after pausing:\n${body.slice(0, 600)}`);
  const paused = await api(stagePath);
  if (!paused.paused || paused.paused.reason !== pauseReason) fail(`the stage is not paused with the reason: ${JSON.stringify(paused.paused)}`);
  log(`paused through the form; JSON API: paused by ${paused.paused.by}: ${paused.paused.reason}`);
  // The metrics document the chart is drawn from: CloudWatch's points, the pause among the actions.
  const metrics = await api(`${stagePath}/metrics?hours=1`);
  if (!metrics.stage_series.points.some((p) => p.requests > 0)) fail(`no stage requests in the metrics: ${JSON.stringify(metrics.stage_series)}`);
  if (!metrics.actions.some((a) => a.what === "pause" && a.who === paused.paused.by)) fail(`the pause is not among the metrics' actions: ${JSON.stringify(metrics.actions)}`);
  log(`metrics: ${metrics.stage_series.points.length} stage and ${metrics.canary_series.points.length} canary points per ${metrics.period_secs} s, ${metrics.actions.length} actions`);
  // The last hour's chart (a link on the page), with the pause marked.
  await loading(() => evaluate(`document.querySelector('a[href$="hours=1"]').click()`));
  if (!(await evaluate("document.querySelectorAll('svg[role=img] g title').length")))
    fail("the chart marks no action after the pause");
  await screenshot("stage.png");

  // 5. Roll back with a reason; the JSON API shows the canary gone and the action in the history.
  const rollbackReason = `chromium rollback ${Date.now()}`;
  await command("rollback", rollbackReason);
  body = await text();
  if (!body.includes("rollback:")) fail(`no notice after the rollback:\n${body.slice(0, 600)}`);
  let after;
  for (let i = 0; i < 10; i++) {
    after = await api(stagePath);
    if (after.recent_actions.some((e) => e.why.includes(rollbackReason))) break;
    await sleep(500);
  }
  const entry = after.recent_actions.find((e) => e.why.includes(rollbackReason));
  if (!entry) fail(`the rollback is not in the history: ${JSON.stringify(after.recent_actions.slice(0, 3))}`);
  if (before.canary && after.canary && after.canary.percent_traffic > 0) fail(`the canary is still there: ${JSON.stringify(after.canary)}`);
  log(`rolled back through the form; JSON API: ${entry.what} by ${entry.who} (${entry.outcome.status}), canary ${after.canary ? JSON.stringify(after.canary) : "none"}`);
  if (!(await text()).includes(rollbackReason)) fail("the page's history does not show the rollback's reason");
  await screenshot("after-rollback.png");

  // 6. Sign out: the next visit asks to sign in again.
  await loading(() => evaluate(`document.querySelector('form[action$="signout"] button').click()`));
  if (!(await evaluate("location.pathname")).endsWith("/signin")) fail("sign-out did not end on the sign-in page");
  log("signed out");
  ok = true;
} finally {
  writeFileSync(join(args.out, "steps.txt"), steps.join("\n") + "\n");
  try {
    ws.close();
  } catch {}
  chrome.kill("SIGTERM");
  await new Promise((r) => (chrome.exitCode !== null ? r() : chrome.on("exit", r)));
  rmSync(profile, { recursive: true, force: true });
  console.log(ok ? "[dashboard] all steps passed" : "[dashboard] FAILED");
}
