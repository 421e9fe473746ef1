/* SPDX-License-Identifier: Apache-2.0 */
// cors.test.js — a browser app on another origin calls both services
// (SMPOST_CORS_ORIGINS; docs/api.md, "CORS"), in headless Chromium
// (Debian's, driven by puppeteer-core). The page (cors_page/) is served by
// a static server of its own on one loopback port; the services listen on
// others, so every call is cross-origin and Chromium applies CORS in full:
//
//   1. from the allowed origin: NewPost with a bearer token and a JSON
//      body (a real preflight) is 201 and the page reads its id and the
//      exposed X-Request-Id; the same without the token is a 401 the page
//      can read (body and WWW-Authenticate); byId on query-api (preflighted
//      too, for its X-Request-Id) returns the post, with the exposed
//      X-Read-Model-Version;
//   2. from an origin not in the setting (the same page on another port):
//      the preflighted NewPost and a plain GET both reject in fetch(), and
//      the refused command never ran (the author's posts are counted).
//
// Fails on any console error or uncaught exception of the allowed page
// (but the one 401 asked for), any failed request from it, and any request
// to something other than the page's servers and the services. Saves a
// screenshot per page and console.log in SMPOST_BROWSER_OUT. Started by
// tests/browser/cors.sh, which sets:
//   SMPOST_COMMAND_URL, SMPOST_QUERY_URL  the services (tokens on for commands)
//   SMPOST_PAGE_URL                       the page on the allowed origin
//   SMPOST_OTHER_PAGE_URL                 the same page on another origin
//   SMPOST_TOKEN                          a token command-api takes (name cors-page)
//   SMPOST_BROWSER_OUT, SMPOST_CHROMIUM   output directory, the browser
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const puppeteer = require('puppeteer-core');

const COMMAND_URL = required('SMPOST_COMMAND_URL');
const QUERY_URL = required('SMPOST_QUERY_URL');
const PAGE_URL = required('SMPOST_PAGE_URL');
const OTHER_PAGE_URL = required('SMPOST_OTHER_PAGE_URL');
const TOKEN = required('SMPOST_TOKEN');
const OUT = required('SMPOST_BROWSER_OUT');
const CHROMIUM = required('SMPOST_CHROMIUM');
const STEP_TIMEOUT_MS = 20000;
const BYID_ATTEMPTS = 10;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/browser/cors.sh sets it)`);
  return value;
}

const started = Date.now();
const consoleLines = [];

function log(message) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

const known = [COMMAND_URL, QUERY_URL, new URL(PAGE_URL).origin, new URL(OTHER_PAGE_URL).origin];

// Watches a page: its console errors, uncaught exceptions and failed
// requests go to problems; requests to anything unknown are refused.
function watch(page, name, problems) {
  page.on('console', (msg) => {
    consoleLines.push(`${name} ${msg.type()}: ${msg.text()}`);
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught exception: ${err.message}`));
  page.on('requestfailed', (req) =>
    problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure().errorText}`));
  page.on('request', (req) => {
    if (known.some((o) => req.url().startsWith(`${o}/`))) {
      req.continue();
    } else {
      problems.push(`request to something unknown: ${req.method()} ${req.url()}`);
      req.abort('blockedbyclient');
    }
  });
}

async function openPage(browser, url, name, problems) {
  const page = await browser.newPage();
  await page.setRequestInterception(true);
  watch(page, name, problems);
  const hash = new URLSearchParams({ cmd: COMMAND_URL, query: QUERY_URL, token: TOKEN });
  await page.goto(`${url}#${hash}`, { waitUntil: 'networkidle0' });
  await page.waitForFunction(() => window.smpost, { timeout: STEP_TIMEOUT_MS });
  return page;
}

async function allowedOrigin(browser) {
  const problems = [];
  const page = await openPage(browser, PAGE_URL, 'allowed', problems);
  log(`page on the allowed origin: ${PAGE_URL}`);
  const message = `hello from another origin ${new Date().toISOString()}`;
  const created = await page.evaluate((m) => window.smpost.newPost(m, 'cors-newpost-1'), message);
  assert.equal(created.status, 201);
  assert.match(created.id, UUID);
  assert.equal(created.requestId, 'cors-newpost-1', 'X-Request-Id is not readable (exposed)');
  log(`NewPost: 201, id ${created.id}, X-Request-Id readable`);

  const refused = await page.evaluate(() => window.smpost.newPostWithoutToken());
  assert.equal(refused.status, 401);
  assert.equal(refused.error, 'unauthenticated');
  assert.equal(refused.wwwAuthenticate, 'Bearer');
  log('NewPost without a token: a readable 401');

  let found;
  for (let attempt = 1; attempt <= BYID_ATTEMPTS; attempt += 1) {
    found = await page.evaluate((id) => window.smpost.postById(id, 'cors-byid-1'), created.id);
    log(`byId attempt ${attempt}: ${found.status}`);
    if (found.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.equal(found.status, 200, 'byId never answered 200');
  assert.equal(found.posts.length, 1);
  assert.equal(found.posts[0].id, created.id);
  assert.equal(found.posts[0].author, 'cors-page');
  assert.equal(found.posts[0].message, message);
  assert.equal(found.requestId, 'cors-byid-1');
  assert.match(found.readModelVersion || '', /^\d+$/, 'X-Read-Model-Version is not readable');
  log('byId: 200 with the post, X-Read-Model-Version readable');

  const poll = await page.evaluate(() => window.smpost.pollFeed('cors-page'));
  assert.equal(poll.firstStatus, 200);
  assert.match(poll.etag || '', /^W\/"[0-9a-f]{16}"$/, 'ETag is not readable (exposed)');
  assert.equal(poll.againStatus, 304, 'If-None-Match with the current ETag is not 304');
  assert.equal(poll.againEtag, poll.etag);
  assert.equal(poll.cachedAgainStatus, 200, "the browser's revalidated copy");
  assert.ok(poll.sameBody, "the browser's revalidated copy differs from the answer");
  log('byAuthor polled: 200 with an ETag, then 304 with If-None-Match, and the browser cache revalidates');
  await page.screenshot({ path: path.join(OUT, '01-allowed-origin.png') });

  // Chromium logs the 401 asked for as "Failed to load resource"; that one
  // is expected, nothing else is forgiven
  const expected = (p) => p.includes('status of 401');
  assert.ok(problems.filter(expected).length <= 1, 'more 401s than the one asked for');
  const left = problems.filter((p) => !expected(p));
  assert.deepEqual(left, [], `the allowed page reported problems:\n${left.join('\n')}`);
  await page.close();
}

// The refused command must not have run: the author still has one post.
async function postsBy(author) {
  const res = await fetch(`${QUERY_URL}/api/v1/PostLookup/byAuthor/${author}`);
  return res.status === 200 ? (await res.json()).posts.length : 0;
}

async function otherOrigin(browser) {
  const problems = [];
  const page = await openPage(browser, OTHER_PAGE_URL, 'other', problems);
  log(`page on an origin not allowed: ${OTHER_PAGE_URL}`);
  const command = await page.evaluate(
    () => window.smpost.rejection(() => window.smpost.newPost('must not be stored', 'cors-x')));
  assert.match(command, /^TypeError/, `NewPost from another origin: ${command}`);
  const query = await page.evaluate(() => window.smpost.rejection(window.smpost.postLookup));
  assert.match(query, /^TypeError/, `PostLookup from another origin: ${query}`);
  log(`both fetches rejected: ${command}`);
  await page.screenshot({ path: path.join(OUT, '02-other-origin.png') });
  // what Chromium reports is the CORS refusal, nothing else
  const cors = problems.filter((p) => p.includes('blocked by CORS policy'));
  assert.ok(cors.some((p) => p.includes('/api/v1/NewPost') && p.includes('preflight')),
    `no preflight refusal reported for NewPost:\n${problems.join('\n')}`);
  assert.ok(cors.some((p) => p.includes('/api/v1/PostLookup')),
    `no CORS refusal reported for PostLookup:\n${problems.join('\n')}`);
  const other = problems.filter((p) => !p.includes('blocked by CORS policy') &&
    !p.includes('net::ERR_FAILED'));
  assert.deepEqual(other, [], `the other page reported more than CORS refusals:\n${other.join('\n')}`);
  await page.close();
  // give a stray command time to be projected before counting
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(await postsBy('cors-page'), 1, 'the refused NewPost was stored');
  log('the refused NewPost never ran');
}

async function main() {
  const args = ['--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true, args,
    defaultViewport: { width: 1000, height: 600 },
  });
  try {
    await allowedOrigin(browser);
    await otherOrigin(browser);
  } finally {
    fs.writeFileSync(path.join(OUT, 'console.log'), consoleLines.join('\n') + '\n');
    await browser.close();
  }
}

main().then(
  () => log(`cors.test.js: OK (screenshots in ${OUT})`),
  (err) => {
    console.error(`cors.test.js: FAILED: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 1;
  });
