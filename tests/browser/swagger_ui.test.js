/* SPDX-License-Identifier: Apache-2.0 */
// swagger_ui.test.js — Swagger UI of both services, as a person uses it, in
// headless Chromium (Debian's, driven by puppeteer-core):
//
//   1. command-api /swagger/: NewPost, "Try it out", a JSON body, Execute:
//      the rendered response is 201 with the new post's id;
//   2. query-api /swagger/: PostLookupById, "Try it out", that id (and
//      minVersion=0, the read-your-writes wait), Execute until the rendered
//      response is 200 with the post (the projection is asynchronous);
//   3. a command-api with SMPOST_AUTH=jwt: NewPost executed without
//      authorizing is 401; "Authorize" with the bearer token, and the same
//      Execute is 201 with the token's name as author; "Logout", and it is
//      401 again.
//
// Fails on any console error or uncaught exception of the page, any failed
// request, and any request that is not to the two services on 127.0.0.1.
// Saves a screenshot of every step, and console.log, in
// SMPOST_BROWSER_OUT. Started by tests/browser/run.sh, which starts the
// services and sets:
//   SMPOST_COMMAND_URL, SMPOST_QUERY_URL  http://127.0.0.1:<port> of each
//   SMPOST_AUTH_COMMAND_URL              the command-api with tokens on
//   SMPOST_TOKEN                         a token it accepts (name swagger-ui)
//   SMPOST_BROWSER_OUT                   output directory (exists, empty)
//   SMPOST_CHROMIUM                      the browser binary
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const puppeteer = require('puppeteer-core');

const COMMAND_URL = required('SMPOST_COMMAND_URL');
const QUERY_URL = required('SMPOST_QUERY_URL');
const AUTH_URL = required('SMPOST_AUTH_COMMAND_URL');
const TOKEN = required('SMPOST_TOKEN');
const OUT = required('SMPOST_BROWSER_OUT');
const CHROMIUM = required('SMPOST_CHROMIUM');
const STEP_TIMEOUT_MS = 20000;
const BYID_ATTEMPTS = 10;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/browser/run.sh sets it)`);
  return value;
}

const started = Date.now();
const problems = []; // console errors, page errors, failed or foreign requests
const consoleLines = [];
let step = 0;

function log(message) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

// The viewport, or only the element selector (an operation's block) when
// given: the whole page is thousands of pixels tall.
async function screenshot(page, name, selector) {
  step += 1;
  const file = path.join(OUT, `${String(step).padStart(2, '0')}-${name}.png`);
  if (selector) {
    const el = await page.waitForSelector(selector, { timeout: STEP_TIMEOUT_MS });
    await el.screenshot({ path: file });
  } else {
    await page.screenshot({ path: file });
  }
  log(`screenshot ${path.basename(file)}`);
}

// Only the two services, on loopback, may be asked for anything.
function allowed(url) {
  return url.startsWith(`${COMMAND_URL}/`) || url.startsWith(`${QUERY_URL}/`) ||
    url.startsWith(`${AUTH_URL}/`) || url.startsWith('data:') || url.startsWith('blob:');
}

function watch(page) {
  page.on('console', (msg) => {
    const where = msg.location() && msg.location().url ? ` (${msg.location().url})` : '';
    consoleLines.push(`${msg.type()}: ${msg.text()}${where}`);
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}${where}`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught exception in the page: ${err.message}`));
  page.on('requestfailed', (req) => {
    if (allowed(req.url()))
      problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure().errorText}`);
  });
  page.on('request', (req) => {
    if (allowed(req.url())) {
      req.continue();
    } else {
      problems.push(`request to something other than the services: ${req.method()} ${req.url()}`);
      req.abort('blockedbyclient');
    }
  });
}

// The operation's block, opened, with "Try it out" pressed.
async function openTryItOut(page, opId) {
  const block = `#${opId}`;
  await page.waitForSelector(`${block} .opblock-summary`, { timeout: STEP_TIMEOUT_MS });
  if (!(await page.$(`${block}.is-open`))) await page.click(`${block} .opblock-summary-control`);
  await page.waitForSelector(`${block} .try-out__btn`, { timeout: STEP_TIMEOUT_MS });
  await page.click(`${block} .try-out__btn`);
  await page.waitForSelector(`${block} .execute`, { timeout: STEP_TIMEOUT_MS });
  return block;
}

// Replaces the text of a React-controlled input or textarea by typing, so
// Swagger UI sees the change.
async function typeInto(page, selector, text) {
  const el = await page.waitForSelector(selector, { timeout: STEP_TIMEOUT_MS });
  await el.click();
  await el.evaluate((node) => node.select());
  await page.keyboard.press('Backspace');
  await el.type(text);
}

// Clicks Execute and waits for a new rendered response; returns its status
// code and body text as shown in the page.
async function execute(page, block) {
  // A response shown already is cleared first ("Clear"), so the one waited
  // for is the next: React may reuse the old table's element for it.
  if (await page.$(`${block} .btn-clear`)) {
    await page.$eval(`${block} .btn-clear`, (b) => b.click());
    await page.waitForFunction((sel) => !document.querySelector(`${sel} .live-responses-table`),
      { timeout: STEP_TIMEOUT_MS }, block);
    await page.waitForSelector(`${block} .execute`, { timeout: STEP_TIMEOUT_MS });
  }
  await page.click(`${block} .execute`);
  await page.waitForFunction(
    (sel) => {
      const table = document.querySelector(`${sel} .live-responses-table`);
      return table && table.querySelector('tbody tr.response .response-col_status');
    },
    { timeout: STEP_TIMEOUT_MS }, block);
  return page.$eval(`${block} .live-responses-table`, (table) => ({
    status: table.querySelector('tbody tr.response .response-col_status').textContent.trim(),
    body: (table.querySelector('tbody tr.response .response-col_description .highlight-code pre')
      || { textContent: '' }).textContent,
  }));
}

async function commandSide(page) {
  log(`command-api Swagger UI: ${COMMAND_URL}/swagger/`);
  await page.goto(`${COMMAND_URL}/swagger/`, { waitUntil: 'networkidle0' });
  await page.waitForSelector('#operations-command-NewPost', { timeout: STEP_TIMEOUT_MS });
  assert.match(await page.title(), /Swagger UI/);
  await screenshot(page, 'command-api-swagger-ui');

  const block = await openTryItOut(page, 'operations-command-NewPost');
  const message = `hello from Swagger UI ${new Date().toISOString()}`;
  await typeInto(page, `${block} textarea.body-param__text`,
    JSON.stringify({ author: 'swagger-ui', message }));
  await screenshot(page, 'newpost-try-it-out-with-body', block);

  const res = await execute(page, block);
  await screenshot(page, 'newpost-executed-201', block);
  assert.equal(res.status, '201', `NewPost answered ${res.status}: ${res.body}`);
  const reply = JSON.parse(res.body);
  assert.match(reply.id, UUID, `no post id in the rendered response: ${res.body}`);
  assert.equal(reply.message, 'The post creating request completed successfully!');
  assert.equal(reply.version, 0);
  log(`NewPost: 201, id ${reply.id}`);
  return { id: reply.id, message };
}

async function querySide(page, post) {
  log(`query-api Swagger UI: ${QUERY_URL}/swagger/`);
  await page.goto(`${QUERY_URL}/swagger/`, { waitUntil: 'networkidle0' });
  await page.waitForSelector('#operations-query-PostLookupById', { timeout: STEP_TIMEOUT_MS });
  await screenshot(page, 'query-api-swagger-ui');

  const block = await openTryItOut(page, 'operations-query-PostLookupById');
  await typeInto(page, `${block} tr[data-param-name="postId"] input`, post.id);
  // minVersion=0: the server waits (up to 2 s) until the post is projected
  await typeInto(page, `${block} tr[data-param-name="minVersion"] input`, '0');
  await screenshot(page, 'byid-try-it-out-with-id', block);

  let res;
  for (let attempt = 1; attempt <= BYID_ATTEMPTS; attempt += 1) {
    res = await execute(page, block);
    log(`PostLookupById attempt ${attempt}: ${res.status}`);
    if (res.status === '200') break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await screenshot(page, 'byid-executed-200', block);
  assert.equal(res.status, '200', `byId never answered 200 (last: ${res.status} ${res.body})`);
  const reply = JSON.parse(res.body);
  assert.equal(reply.message, 'Successfully returned 1 post');
  assert.equal(reply.posts.length, 1);
  assert.equal(reply.posts[0].id, post.id);
  assert.equal(reply.posts[0].author, 'swagger-ui');
  assert.equal(reply.posts[0].message, post.message);
  log(`PostLookupById: 200, the post is rendered`);
}

// Opens the Authorize dialog, runs act inside it, screenshots it and closes it.
async function inAuthorizeDialog(page, name, act) {
  await page.click('.auth-wrapper .btn.authorize');
  await page.waitForSelector('.modal-ux', { timeout: STEP_TIMEOUT_MS });
  await act();
  await screenshot(page, name, '.modal-ux');
  await page.$eval('.modal-ux button.btn-done', (b) => b.click());
  await page.waitForFunction(() => !document.querySelector('.dialog-ux'),
    { timeout: STEP_TIMEOUT_MS });
}

// Execute on the operation; asserts a 401 with the usual error body.
async function expectUnauthenticated(page, block, name) {
  const res = await execute(page, block);
  await screenshot(page, name, block);
  assert.equal(res.status, '401', `NewPost without a token answered ${res.status}: ${res.body}`);
  assert.equal(JSON.parse(res.body).error, 'unauthenticated');
}

async function authSide(page) {
  log(`command-api with SMPOST_AUTH=jwt, Swagger UI: ${AUTH_URL}/swagger/`);
  await page.goto(`${AUTH_URL}/swagger/`, { waitUntil: 'networkidle0' });
  await page.waitForSelector('#operations-command-NewPost', { timeout: STEP_TIMEOUT_MS });
  await page.waitForSelector('.auth-wrapper .btn.authorize', { timeout: STEP_TIMEOUT_MS });
  const block = await openTryItOut(page, 'operations-command-NewPost');
  // no author: with a token the name comes from it
  await typeInto(page, `${block} textarea.body-param__text`,
    JSON.stringify({ message: 'hello with a bearer token' }));
  await expectUnauthenticated(page, block, 'auth-newpost-not-authorized-401');
  log('NewPost before Authorize: 401');

  await inAuthorizeDialog(page, 'auth-authorize-dialog-token-applied', async () => {
    await typeInto(page, '.modal-ux input[aria-label="auth-bearer-value"]', TOKEN);
    await page.click('.modal-ux button[aria-label="Apply credentials"]');
    await page.waitForSelector('.modal-ux button[aria-label="Remove authorization"]',
      { timeout: STEP_TIMEOUT_MS });
  });
  const res = await execute(page, block);
  await screenshot(page, 'auth-newpost-authorized-201', block);
  assert.equal(res.status, '201', `NewPost with the token answered ${res.status}: ${res.body}`);
  const reply = JSON.parse(res.body);
  assert.match(reply.id, UUID, `no post id in the rendered response: ${res.body}`);
  log(`NewPost after Authorize: 201, id ${reply.id}`);
  // the curl line Swagger UI shows carries the header it sent
  const curl = await page.$eval(`${block} .curl-command`, (el) => el.textContent);
  assert.ok(curl.includes(`Authorization: Bearer ${TOKEN}`),
    `the request shown carries no bearer token: ${curl}`);

  await inAuthorizeDialog(page, 'auth-logged-out', async () => {
    await page.click('.modal-ux button[aria-label="Remove authorization"]');
    await page.waitForSelector('.modal-ux button[aria-label="Apply credentials"]',
      { timeout: STEP_TIMEOUT_MS });
  });
  await expectUnauthenticated(page, block, 'auth-newpost-logged-out-401');
  log('NewPost after Logout: 401');
  // Chromium logs each 401 as "Failed to load resource" on the console: the
  // two answers asked for here are expected, nothing else is forgiven
  const expected = (p) => p.includes('status of 401') && p.includes(`${AUTH_URL}/api/v1/NewPost`);
  assert.ok(problems.filter(expected).length <= 2, 'more 401s than the two asked for');
  problems.splice(0, problems.length, ...problems.filter((p) => !expected(p)));
  return reply.id;
}

// Proves the console watcher is live (so a silent console means no error,
// not a deaf listener): the page logs one error on purpose, which must be
// seen and is then the only problem forgiven.
async function canary(page) {
  const text = 'smpost canary: the console watcher sees errors';
  await page.evaluate((t) => console.error(t), text);
  const seen = () => problems.some((p) => p.includes(text));
  for (let i = 0; i < 40 && !seen(); i += 1) await new Promise((r) => setTimeout(r, 50));
  assert.ok(seen(), 'a console.error in the page was not seen: the watcher is broken');
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes(text)));
}

async function main() {
  const args = ['--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // nothing but loopback resolves, whatever the page (or the browser) asks
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];
  if (process.getuid && process.getuid() === 0) {
    // Chromium refuses to start its sandbox as root (CI runs as root).
    args.push('--no-sandbox');
    log('running as root: Chromium started with --no-sandbox');
  }
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true, args,
    defaultViewport: { width: 1280, height: 900 },
  });
  try {
    const page = await browser.newPage();
    await page.setRequestInterception(true);
    watch(page);
    const post = await commandSide(page);
    await querySide(page, post);
    await authSide(page);
    await canary(page);
  } finally {
    fs.writeFileSync(path.join(OUT, 'console.log'), consoleLines.join('\n') + '\n');
    await browser.close();
  }
  assert.deepEqual(problems, [], `the page reported problems:\n${problems.join('\n')}`);
}

main().then(
  () => {
    log(`swagger_ui.test.js: OK (screenshots in ${OUT})`);
  },
  (err) => {
    if (problems.length) console.error(`page problems:\n  ${problems.join('\n  ')}`);
    console.error(`swagger_ui.test.js: FAILED: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 1;
  });
