// Shared harness for the client scripts in this directory. Each script drives one real client
// library against a forgebridge proxy and reports every call on its own line:
//
//   ok   [client] call
//   FAIL [client] call: what was received (status, body or value), last HTTP exchange
//
// and exits non-zero when any call failed. Usage of every script:
//
//   node SCRIPT.mjs PROXY_URL UPSTREAM_DIALECT
//
// PROXY_URL is the proxy's origin (e.g. http://127.0.0.1:8081, no API prefix: each script adds
// what its library expects); UPSTREAM_DIALECT is the proxy's upstream dialect (github, gitea or
// gitlab), which decides the calls that must answer 501 (see the matrix in README.md). Tokens
// come from the environment: FB_ADMIN_TOKEN (site administrator) and FB_ALICE_TOKEN,
// FB_BOB_TOKEN, FB_CAROL_TOKEN, FB_DAVE_TOKEN for the seeded users of tests/common/mod.rs.
// GitLab user ids, which only the upstream knows, come as FB_USER_IDS=alice=5,bob=6,….

import { inspect } from "node:util";

const DIALECTS = ["github", "gitea", "gitlab"];

class CheckFailed extends Error {}

/** Every HTTP exchange the client library made, recorded by wrapping the global fetch. */
const exchanges = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const method = (init?.method || input?.method || "GET").toUpperCase();
  const url = typeof input === "string" ? input : input?.url ?? String(input);
  const entry = { method, url, status: null, link: null };
  exchanges.push(entry);
  const response = await realFetch(input, init);
  entry.status = response.status;
  entry.link = response.headers.get("link");
  return response;
};

function show(value) {
  const text = typeof value === "string" ? JSON.stringify(value) : inspect(value, { depth: 6, breakLength: Infinity });
  return text.length > 1500 ? `${text.slice(0, 1500)}…` : text;
}

function lastExchange(since) {
  const mine = exchanges.slice(since);
  if (mine.length === 0) return "no HTTP request was made";
  const e = mine[mine.length - 1];
  return `last request ${e.method} ${e.url} -> ${e.status ?? "no answer"} (${mine.length} request(s) in this call)`;
}

/**
 * The status and body of an error thrown by any of the three libraries:
 * - @octokit/rest: RequestError with .status and .response.data;
 * - gitea-js: the fetch Response itself, with .status and the parsed body in .error;
 * - @gitbeaker/rest: GitbeakerRequestError with .cause.response (status) and .cause.description.
 */
export function errorInfo(e) {
  if (e && typeof e === "object") {
    if (typeof e.status === "number" && e.response && "data" in e.response) {
      return { status: e.status, body: e.response.data };
    }
    if (typeof Response !== "undefined" && e instanceof Response) {
      return { status: e.status, body: e.error };
    }
    if (e.cause?.response && typeof e.cause.response.status === "number") {
      return { status: e.cause.response.status, body: e.cause.description ?? e.message };
    }
  }
  return { status: null, body: e instanceof Error ? `${e.name}: ${e.message}` : e };
}

function bodyText(body) {
  return typeof body === "string" ? body : JSON.stringify(body ?? null);
}

export function harness(client) {
  const [url, upstream] = process.argv.slice(2);
  if (!url || !DIALECTS.includes(upstream)) {
    console.error(`usage: node ${process.argv[1]} PROXY_URL github|gitea|gitlab`);
    process.exit(2);
  }
  const tokens = {};
  for (const who of ["admin", "alice", "bob", "carol", "dave"]) {
    const value = process.env[`FB_${who.toUpperCase()}_TOKEN`];
    if (!value) {
      console.error(`FB_${who.toUpperCase()}_TOKEN is not set`);
      process.exit(2);
    }
    tokens[who] = value;
  }
  const userIds = Object.fromEntries(
    (process.env.FB_USER_IDS || "")
      .split(",")
      .filter(Boolean)
      .map((pair) => {
        const [login, id] = pair.split("=");
        return [login, Number(id)];
      }),
  );
  let failures = 0;
  let passed = 0;

  const t = {
    url: url.replace(/\/+$/, ""),
    upstream,
    tokens,
    userIds,
    exchanges,

    /** Fails the current call with what was received. */
    fail(message) {
      throw new CheckFailed(message);
    },
    check(condition, message) {
      if (!condition) t.fail(message);
    },
    /** Deep equality through JSON (key order matters only within arrays). */
    eq(actual, expected, what) {
      const norm = (v) => JSON.stringify(v, (_, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));
      if (norm(actual) !== norm(expected)) {
        t.fail(`${what}: expected ${show(expected)}, received ${show(actual)}`);
      }
    },

    /** Runs one named call; any thrown error or failed check is reported and counted. */
    async step(call, fn) {
      const since = exchanges.length;
      try {
        await fn();
        passed += 1;
        console.log(`ok   [${client}] ${call}`);
      } catch (e) {
        failures += 1;
        let what;
        if (e instanceof CheckFailed) {
          what = e.message;
        } else {
          const info = errorInfo(e);
          what = info.status === null
            ? `threw ${show(info.body)}`
            : `threw an error with status ${info.status}, body ${bodyText(info.body)}`;
        }
        console.log(`FAIL [${client}] ${call}: ${what}; ${lastExchange(since)} (upstream ${upstream})`);
      }
    },

    /**
     * KNOWN BUG marker: one check where, when `applies` (the bug's direction), forgebridge
     * currently answers `buggy` instead of the correct `expected`. There either value passes (the
     * bug is reported, or its fix noted so the marker can go) and anything else fails; elsewhere
     * only `expected` passes. Each use names its entry in the report.
     */
    knownBug(id, applies, actual, expected, buggy, what) {
      const norm = (v) => JSON.stringify(v);
      if (!applies) {
        t.eq(actual, expected, what);
      } else if (norm(actual) === norm(expected)) {
        console.log(`note [${client}] KNOWN BUG ${id} no longer reproduces (${what}): remove its marker`);
      } else if (norm(actual) === norm(buggy)) {
        console.log(`KNOWN BUG [${client}] ${id}: ${what}: expected ${show(expected)}, received ${show(buggy)} (upstream ${upstream})`);
      } else {
        t.fail(`${what}: expected ${show(expected)} (or, KNOWN BUG ${id}, ${show(buggy)}), received ${show(actual)}`);
      }
    },

    /** Awaits a call that must fail with `status`; returns the error body. */
    async rejects(status, promiseFn, what) {
      let result;
      try {
        result = await promiseFn();
      } catch (e) {
        const info = errorInfo(e);
        if (info.status !== status) {
          t.fail(`${what}: expected an error with status ${status}, received ${info.status === null ? `a non-HTTP error ${show(info.body)}` : `status ${info.status}, body ${bodyText(info.body)}`}`);
        }
        return info.body;
      }
      const got = result === undefined ? "" : ` with ${typeof result?.status === "number" ? `status ${result.status}, ` : ""}${show(result?.data ?? result)}`;
      t.fail(`${what}: expected an error with status ${status}, but the call succeeded${got}`);
    },

    /**
     * A call whose operation the upstream dialects in `unsupportedOn` lack (README matrix: 501).
     * There it must fail with the library's error for status 501, naming the canonical
     * operation `op`; elsewhere `fn` runs and checks the success.
     */
    async stepOr501(call, op, unsupportedOn, fn) {
      if (!unsupportedOn.includes(upstream)) {
        return t.step(call, fn);
      }
      return t.step(`${call} (501: ${op} is not supported by a ${upstream} upstream)`, async () => {
        const body = await t.rejects(501, fn, call);
        t.check(bodyText(body).includes(op), `${call}: the 501 must name ${op}, received body ${bodyText(body)}`);
      });
    },

    /** Requests made since index `since` whose URL contains `fragment`. */
    requestsSince(since, fragment) {
      return exchanges.slice(since).filter((e) => e.url.includes(fragment));
    },

    finish() {
      console.log(`[${client}] against a ${upstream} upstream: ${passed} call(s) ok, ${failures} failed`);
      process.exit(failures === 0 ? 0 : 1);
    },
  };
  return t;
}

/** The logins (or other key) of a list, sorted. */
export function keys(items, key = "login") {
  return items.map((i) => i?.[key]).sort();
}
