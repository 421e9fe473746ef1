/* SPDX-License-Identifier: Apache-2.0 */
// app.js — what a front end on another origin does with the smpost APIs:
// a command with a bearer token and a JSON body (so the browser sends a
// preflight first), then a query, reading the exposed response headers.
'use strict';

const params = new URLSearchParams(location.hash.slice(1));
const CMD = params.get('cmd');
const QUERY = params.get('query');
const TOKEN = params.get('token');

function show(line) {
  document.getElementById('log').textContent += `${line}\n`;
}

// NewPost with Authorization and Content-Type: application/json: neither
// is CORS-safelisted, so the browser asks command-api first (OPTIONS).
async function newPost(message, requestId) {
  const res = await fetch(`${CMD}/api/v1/NewPost`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      'Content-Type': 'application/json',
      'X-Request-Id': requestId,
    },
    body: JSON.stringify({ message }),
  });
  const body = await res.json();
  show(`NewPost: ${res.status} ${body.id}`);
  return { status: res.status, id: body.id, requestId: res.headers.get('X-Request-Id') };
}

// The same without the token: an error the page can read (status, body,
// WWW-Authenticate), not a network failure.
async function newPostWithoutToken() {
  const res = await fetch(`${CMD}/api/v1/NewPost`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: 'no token' }),
  });
  const body = await res.json();
  show(`NewPost without a token: ${res.status}`);
  return { status: res.status, error: body.error,
           wwwAuthenticate: res.headers.get('WWW-Authenticate') };
}

// byId with minVersion (the read-your-writes wait) and an X-Request-Id of
// its own, which makes the query preflighted too.
async function postById(id, requestId) {
  const res = await fetch(`${QUERY}/api/v1/PostLookup/byId/${id}?minVersion=0`,
    { headers: { 'X-Request-Id': requestId } });
  const body = res.status === 200 ? await res.json() : null;
  show(`byId: ${res.status}`);
  return {
    status: res.status,
    posts: body ? body.posts : [],
    requestId: res.headers.get('X-Request-Id'),
    readModelVersion: res.headers.get('X-Read-Model-Version'),
  };
}

// A feed that polls: the first answer's ETag sent back in If-None-Match
// (not CORS-safelisted: preflighted) gives 304 while nothing changed; then
// the browser's own cache doing the same (cache: 'no-cache' revalidates,
// and a 304 reaches the script as the cached 200).
async function pollFeed(author) {
  const url = `${QUERY}/api/v1/PostLookup/byAuthor/${encodeURIComponent(author)}`;
  const first = await fetch(url, { cache: 'no-store' });
  const etag = first.headers.get('ETag');
  const firstBody = await first.text();
  const again = await fetch(url, { cache: 'no-store', headers: { 'If-None-Match': etag } });
  await again.text();
  const cached = await fetch(url, { cache: 'no-cache' });
  await cached.text(); // an unread body is aborted, which the test counts as a failure
  const cachedAgain = await fetch(url, { cache: 'no-cache' });
  const cachedBody = await cachedAgain.text();
  show(`poll: ${first.status} ${again.status} ${cachedAgain.status}`);
  return {
    firstStatus: first.status, etag, againStatus: again.status,
    againEtag: again.headers.get('ETag'), cachedStatus: cached.status,
    cachedAgainStatus: cachedAgain.status, sameBody: cachedBody === firstBody,
  };
}

// A plain GET (no preflight): what a page of a foreign origin may not read.
async function postLookup() {
  const res = await fetch(`${QUERY}/api/v1/PostLookup`);
  show(`PostLookup: ${res.status}`);
  return res.status;
}

// fetch() rejects (TypeError) when CORS forbids reading the answer; the
// message, or "resolved" when it did not.
async function rejection(call) {
  try {
    await call();
    return 'resolved';
  } catch (err) {
    return `${err.name}: ${err.message}`;
  }
}

window.smpost = { newPost, newPostWithoutToken, postById, pollFeed, postLookup, rejection };
show(`ready: ${location.origin}`);
