// @octokit/rest (GitHub dialect) against forgebridge: baseUrl = PROXY_URL + "/api/v3".
// Usage and environment: see lib.mjs. Expects the seed of tests/common/mod.rs.

import { Octokit } from "@octokit/rest";
import { harness, keys } from "./lib.mjs";

const t = harness("@octokit/rest");
const baseUrl = `${t.url}/api/v3`;
// Octokit's request-log plugin logs every failed request at error level; the expected 404s and
// 501s below are not worth a line each.
const log = { debug() {}, info() {}, warn: console.warn, error() {} };
const as = (who) => new Octokit({ baseUrl, auth: t.tokens[who], log, userAgent: "forgebridge-clients-test" });
const admin = as("admin");
const alice = as("alice");
const bob = as("bob");
const carol = as("carol");

// Operations a GitLab upstream lacks (README matrix), and the one a Gitea upstream lacks.
const NO_GITLAB = ["gitlab"];
const NO_GITEA = ["gitea"];

/** Checks that `paginate` really fetched `pages` pages of `path`, all from the proxy. */
function pagesFetched(since, path, pages) {
  const fetched = t.requestsSince(since, `/api/v3${path}`);
  t.check(
    fetched.length === pages,
    `expected ${pages} page request(s) to ${path}, the client made ${fetched.length}: ${fetched.map((e) => `${e.url} -> ${e.status}`).join(", ")}`,
  );
  for (const e of fetched) {
    t.check(e.url.startsWith(`${baseUrl}/`), `a followed Link left the proxy: ${e.url}`);
    t.check(e.status === 200, `page ${e.url} answered ${e.status}`);
  }
  const last = fetched[fetched.length - 1];
  t.check(!/rel="next"/.test(last.link || ""), `the last page still has rel="next": ${last.link}`);
  return fetched;
}

await t.step("orgs.get", async () => {
  const r = await alice.rest.orgs.get({ org: "acme" });
  t.eq(r.status, 200, "status");
  t.eq(r.data.login, "acme", "login");
  t.eq(r.data.name, "Acme", "name");
  t.eq(r.data.description, "Rockets", "description");
  t.eq(r.data.url, `${baseUrl}/orgs/acme`, "url");
  await t.rejects(404, () => alice.rest.orgs.get({ org: "no-such-org" }), "orgs.get of a missing org");
});

await t.step("paginate(orgs.listForAuthenticatedUser, per_page 1) (as carol)", async () => {
  const since = t.exchanges.length;
  const orgs = await carol.paginate(carol.rest.orgs.listForAuthenticatedUser, { per_page: 1 });
  // KNOWN BUG B2 (see the report): forgebridge's GitLab dialect ignores min_access_level on
  // GET /groups, so through a GitLab upstream (the reference forge) carol's organizations
  // include acme, which she is not a member of.
  t.eq(keys(orgs), ["hidden", "widgets"], "carol's organizations");
  pagesFetched(since, "/user/orgs", orgs.length);
});

let ids = {};
await t.step("paginate(orgs.list, since 0, per_page 2)", async () => {
  const since = t.exchanges.length;
  const orgs = await admin.paginate(admin.rest.orgs.list, { since: 0, per_page: 2 });
  t.eq(orgs.map((o) => o.login), ["acme", "widgets", "hidden"], "all organizations, in id order");
  pagesFetched(since, "/organizations", 2);
  ids = Object.fromEntries(orgs.map((o) => [o.login, o.id]));
});

await t.step("paginate(orgs.list, since acme's id, per_page 1)", async () => {
  t.check(ids.acme, "no id for acme from the previous call");
  const since = t.exchanges.length;
  const orgs = await admin.paginate(admin.rest.orgs.list, { since: ids.acme, per_page: 1 });
  t.eq(orgs.map((o) => o.login), ["widgets", "hidden"], "organizations after acme");
  const pages = pagesFetched(since, "/organizations", 2);
  const cursors = pages.map((e) => Number(new URL(e.url).searchParams.get("since")));
  t.eq(cursors, [ids.acme, ids.widgets], "since cursors the client followed");
});

await t.step('request("POST /admin/organizations")', async () => {
  const r = await admin.request("POST /admin/organizations", {
    login: "octo-org",
    admin: "alice",
    profile_name: "Octo Org",
  });
  t.eq(r.status, 201, "status");
  t.eq(r.data.login, "octo-org", "login");
  t.eq(r.data.url, `${baseUrl}/orgs/octo-org`, "url");
  const got = await alice.rest.orgs.get({ org: "octo-org" });
  t.eq(got.data.name, "Octo Org", "name read back (profile_name)");
  const membership = await alice.rest.orgs.getMembershipForUser({ org: "octo-org", username: "alice" });
  t.eq(membership.data.role, "admin", "the named admin's role in the new organization");
});

await t.step("orgs.update", async () => {
  const r = await alice.rest.orgs.update({ org: "octo-org", description: "Made by Octokit", name: "Octo Org Ltd" });
  t.eq(r.status, 200, "status");
  t.eq([r.data.login, r.data.description, r.data.name], ["octo-org", "Made by Octokit", "Octo Org Ltd"], "login, description, name");
  const got = await alice.rest.orgs.get({ org: "octo-org" });
  t.eq([got.data.description, got.data.name], ["Made by Octokit", "Octo Org Ltd"], "description and name read back");
});

await t.step('request("PATCH /admin/organizations/{org}")', async () => {
  const r = await admin.request("PATCH /admin/organizations/{org}", { org: "octo-org", login: "octo-renamed" });
  t.eq(r.status, 202, "status");
  t.check(typeof r.data.message === "string" && r.data.message.length > 0, `no message in ${JSON.stringify(r.data)}`);
  const got = await alice.rest.orgs.get({ org: "octo-renamed" });
  t.eq([got.data.login, got.data.description], ["octo-renamed", "Made by Octokit"], "the renamed organization");
  await t.rejects(404, () => alice.rest.orgs.get({ org: "octo-org" }), "orgs.get of the old name");
});

await t.step("orgs.delete", async () => {
  const r = await admin.rest.orgs.delete({ org: "octo-renamed" });
  t.eq(r.status, 202, "status");
  await t.rejects(404, () => alice.rest.orgs.get({ org: "octo-renamed" }), "orgs.get after delete");
});

await t.step("paginate(orgs.listMembers, per_page 1)", async () => {
  const since = t.exchanges.length;
  const members = await alice.paginate(alice.rest.orgs.listMembers, { org: "acme", per_page: 1 });
  t.eq(keys(members), ["alice", "bob"], "acme's members");
  pagesFetched(since, "/orgs/acme/members", 2);
});

await t.step('orgs.listMembers({role: "admin"})', async () => {
  const r = await alice.rest.orgs.listMembers({ org: "acme", role: "admin" });
  // KNOWN BUG B3 (see the report): the `role` filter is ignored, every member is listed.
  t.eq(keys(r.data), ["alice"], "acme's admins");
});

await t.step("orgs.checkMembershipForUser", async () => {
  const r = await alice.rest.orgs.checkMembershipForUser({ org: "acme", username: "bob" });
  t.eq(r.status, 204, "status for a member");
  await t.rejects(404, () => alice.rest.orgs.checkMembershipForUser({ org: "acme", username: "dave" }), "checkMembershipForUser of a non-member");
});

await t.step("orgs.getMembershipForUser", async () => {
  const r = await alice.rest.orgs.getMembershipForUser({ org: "acme", username: "alice" });
  t.eq([r.data.role, r.data.state, r.data.user?.login, r.data.organization?.login], ["admin", "active", "alice", "acme"], "role, state, user, organization");
});

await t.stepOr501("orgs.setMembershipForUser", "member.set_role", NO_GITEA, async () => {
  const r = await alice.rest.orgs.setMembershipForUser({ org: "acme", username: "dave", role: "member" });
  t.eq([r.status, r.data.role, r.data.state], [200, "member", "active"], "status, role, state");
  const check = await alice.rest.orgs.checkMembershipForUser({ org: "acme", username: "dave" });
  t.eq(check.status, 204, "checkMembershipForUser of the added member");
});

await t.step("orgs.removeMember", async () => {
  const r = await alice.rest.orgs.removeMember({ org: "widgets", username: "carol" });
  t.eq(r.status, 204, "status");
  await t.rejects(404, () => alice.rest.orgs.checkMembershipForUser({ org: "widgets", username: "carol" }), "checkMembershipForUser after removal");
});

await t.stepOr501("orgs.listPublicMembers", "public_member.list", NO_GITLAB, async () => {
  const r = await alice.rest.orgs.listPublicMembers({ org: "acme" });
  t.eq(keys(r.data), ["alice"], "acme's public members");
});

await t.stepOr501("orgs.checkPublicMembershipForUser", "public_member.check", NO_GITLAB, async () => {
  const r = await alice.rest.orgs.checkPublicMembershipForUser({ org: "acme", username: "alice" });
  t.eq(r.status, 204, "status for a public member");
  await t.rejects(404, () => alice.rest.orgs.checkPublicMembershipForUser({ org: "acme", username: "bob" }), "checkPublicMembershipForUser of a concealed member");
});

await t.stepOr501("orgs.setPublicMembershipForAuthenticatedUser (as bob)", "public_member.publicize", NO_GITLAB, async () => {
  const r = await bob.rest.orgs.setPublicMembershipForAuthenticatedUser({ org: "acme", username: "bob" });
  t.eq(r.status, 204, "status");
  const list = await alice.rest.orgs.listPublicMembers({ org: "acme" });
  t.eq(keys(list.data), ["alice", "bob"], "public members after publicizing bob");
});

await t.stepOr501("orgs.removePublicMembershipForAuthenticatedUser (as bob)", "public_member.conceal", NO_GITLAB, async () => {
  const r = await bob.rest.orgs.removePublicMembershipForAuthenticatedUser({ org: "acme", username: "bob" });
  t.eq(r.status, 204, "status");
  await t.rejects(404, () => alice.rest.orgs.checkPublicMembershipForUser({ org: "acme", username: "bob" }), "checkPublicMembershipForUser after concealing");
});

await t.stepOr501("orgs.listForUser", "org.list_for_user", NO_GITLAB, async () => {
  const r = await alice.rest.orgs.listForUser({ username: "alice" });
  t.check(keys(r.data).includes("acme"), `acme (alice is a public member) missing from ${JSON.stringify(keys(r.data))}`);
});

await t.stepOr501("activity.listPublicOrgEvents", "activity.list", NO_GITLAB, async () => {
  const r = await alice.rest.activity.listPublicOrgEvents({ org: "acme" });
  // A Gitea upstream's feed holds repository activities only (the reference forge's
  // organization events have no Gitea op_type), so it may be empty there.
  const some = t.upstream === "gitea" || r.data.length > 0;
  t.check(Array.isArray(r.data) && some && r.data.every((e) => typeof e.type === "string"), `not a list of events: ${JSON.stringify(r.data).slice(0, 500)}`);
});

await t.step("users.getAuthenticated", async () => {
  const r = await alice.rest.users.getAuthenticated();
  t.eq(r.data.login, "alice", "login");
});

t.finish();
