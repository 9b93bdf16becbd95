// @gitbeaker/rest (GitLab dialect) against forgebridge: new Gitlab({host: PROXY_URL, token}),
// which adds /api/v4 itself and sends `private-token: TOKEN`. Usage and environment: see
// lib.mjs. Expects the seed of tests/common/mod.rs.
//
// gitbeaker returns only the body unless a call passes showExpanded:true ({data, status,
// headers}); list calls follow `Link rel="next"` on their own (reusing only its query string);
// errors throw GitbeakerRequestError with the status in cause.response.status.

import { Gitlab } from "@gitbeaker/rest";
import { harness, keys } from "./lib.mjs";

const t = harness("@gitbeaker/rest");
const apiBase = `${t.url}/api/v4`;
const as = (who) => new Gitlab({ host: t.url, token: t.tokens[who] });
const admin = as("admin");
const alice = as("alice");

const NO_GITEA = ["gitea"];

/** Checks that a list call fetched `pages` pages of `path`, each Link pointing at the proxy. */
function pagesFetched(since, path, pages) {
  const fetched = t.exchanges.slice(since).filter((e) => new URL(e.url).pathname === `/api/v4${path}`);
  t.check(
    fetched.length === pages,
    `expected ${pages} page request(s) to ${path}, the client made ${fetched.length}: ${fetched.map((e) => `${e.url} -> ${e.status}`).join(", ")}`,
  );
  for (const e of fetched) {
    t.check(e.status === 200, `page ${e.url} answered ${e.status}`);
    for (const m of (e.link || "").matchAll(/<([^>]*)>/g)) {
      t.check(m[1].startsWith(`${apiBase}/`), `a Link leaves the proxy: ${m[1]}`);
    }
  }
}

const ids = {};
await t.step("Users.all({username}) for each seeded user", async () => {
  for (const login of ["alice", "bob", "carol", "dave"]) {
    const users = await alice.Users.all({ username: login });
    t.eq(users.map((u) => u.username), [login], `users named ${login}`);
    ids[login] = users[0].id;
    if (t.userIds[login] !== undefined) {
      t.eq(ids[login], t.userIds[login], `${login}'s id (the upstream's)`);
    }
  }
});

await t.stepOr501("Users.show(id)", "user.get", NO_GITEA, async () => {
  const user = await alice.Users.show(ids.dave ?? t.userIds.dave);
  t.eq(user.username, "dave", "username");
});

await t.step("Users.showCurrentUser", async () => {
  const user = await alice.Users.showCurrentUser();
  t.eq([user.username, user.id], ["alice", ids.alice], "username, id");
});

await t.step("Groups.all({perPage: 1}) (follows Link rel=next)", async () => {
  const since = t.exchanges.length;
  const groups = await admin.Groups.all({ perPage: 1 });
  t.eq(keys(groups, "path"), ["acme", "hidden", "widgets"], "all groups");
  pagesFetched(since, "/groups", 3);
});

await t.step("Groups.all({perPage: 1, page: 2, showExpanded}) (one page, X-* headers)", async () => {
  const r = await admin.Groups.all({ perPage: 1, page: 2, showExpanded: true });
  t.eq(r.data.length, 1, "items on page 2");
  const p = r.paginationInfo;
  t.eq([p.total, p.totalPages, p.current, p.next, p.previous, p.perPage], [3, 3, 2, 3, 1, 1], "total, totalPages, current, next, previous, perPage");
});

await t.step("Groups.all({minAccessLevel: 10}) (as carol)", async () => {
  const groups = await as("carol").Groups.all({ minAccessLevel: 10 });
  // KNOWN BUG B2 (see the report): forgebridge's GitLab dialect ignores min_access_level (and
  // owned) on GET /groups and lists every group carol can see, acme included.
  t.eq(keys(groups, "path"), ["hidden", "widgets"], "groups carol is a member of");
});

let acmeId;
await t.step("Groups.show", async () => {
  const group = await alice.Groups.show("acme");
  t.eq([group.path, group.name, group.description, group.full_path], ["acme", "Acme", "Rockets", "acme"], "path, name, description, full_path");
  acmeId = group.id;
  const byId = await alice.Groups.show(acmeId);
  t.eq(byId.path, "acme", "path of the group shown by id");
  await t.rejects(404, () => alice.Groups.show("no-such-group"), "Groups.show of a missing group");
});

let beakerId;
await t.step("Groups.create", async () => {
  const r = await admin.Groups.create("Beaker Group", "beaker-group", { showExpanded: true });
  t.eq(r.status, 201, "status");
  t.eq(r.data.path, "beaker-group", "path");
  beakerId = r.data.id;
  // KNOWN BUG B1 (see the report): on a GitHub upstream a create that needs no follow-up
  // update answers from GitHub's admin-create answer, which has no display name, so `name`
  // falls back to the path although the upstream stored "Beaker Group".
  t.eq(r.data.name, "Beaker Group", "name in the create answer");
  const shown = await admin.Groups.show("beaker-group");
  t.eq([shown.id, shown.name], [beakerId, "Beaker Group"], "id and name read back");
  await t.rejects(400, () => admin.Groups.create("Beaker Group", "beaker-group"), "Groups.create of an existing path");
});

await t.step("Groups.edit({description})", async () => {
  const group = await admin.Groups.edit(beakerId, { description: "Edited by gitbeaker" });
  t.eq([group.path, group.description], ["beaker-group", "Edited by gitbeaker"], "path, description");
  const shown = await admin.Groups.show(beakerId);
  t.eq(shown.description, "Edited by gitbeaker", "description read back");
});

await t.step("Groups.edit({path, name}) (rename)", async () => {
  const group = await admin.Groups.edit(beakerId, { path: "beaker-renamed", name: "Beaker Renamed" });
  t.eq([group.path, group.name, group.description], ["beaker-renamed", "Beaker Renamed", "Edited by gitbeaker"], "path, name, description");
  const shown = await admin.Groups.show("beaker-renamed");
  t.eq(shown.id, beakerId, "id of the renamed group");
  await t.rejects(404, () => admin.Groups.show("beaker-group"), "Groups.show of the old path");
});

await t.step("Groups.remove", async () => {
  const r = await admin.Groups.remove(beakerId, { showExpanded: true });
  t.eq(r.status, 202, "status");
  await t.rejects(404, () => admin.Groups.show("beaker-renamed"), "Groups.show after remove");
});

await t.step("GroupMembers.all({perPage: 1}) (follows Link rel=next)", async () => {
  const since = t.exchanges.length;
  const members = await alice.GroupMembers.all("acme", { perPage: 1 });
  t.eq(keys(members, "username"), ["alice", "bob"], "acme's members");
  t.eq(members.map((m) => m.id).sort(), [ids.alice, ids.bob].sort(), "member ids");
  pagesFetched(since, "/groups/acme/members", 2);
});

await t.step("GroupMembers.show", async () => {
  const owner = await alice.GroupMembers.show("acme", ids.alice);
  t.eq([owner.username, owner.access_level], ["alice", 50], "alice's username, access_level");
  const member = await alice.GroupMembers.show(acmeId, ids.bob);
  t.eq([member.username, member.access_level], ["bob", 30], "bob's username, access_level (group by id)");
  await t.rejects(404, () => alice.GroupMembers.show("acme", ids.dave), "GroupMembers.show of a non-member");
});

await t.stepOr501("GroupMembers.add", "member.set_role", NO_GITEA, async () => {
  const r = await alice.GroupMembers.add("acme", 30, { userId: ids.dave, showExpanded: true });
  t.eq([r.status, r.data.username, r.data.access_level], [201, "dave", 30], "status, username, access_level");
  const shown = await alice.GroupMembers.show("acme", ids.dave);
  t.eq(shown.access_level, 30, "access_level read back");
});

await t.step("GroupMembers.remove", async () => {
  const r = await alice.GroupMembers.remove("widgets", ids.carol, { showExpanded: true });
  t.eq(r.status, 204, "status");
  await t.rejects(404, () => alice.GroupMembers.show("widgets", ids.carol), "GroupMembers.show after removal");
});

// gitbeaker has no Organizations resource; its requester reaches POST /organizations.
await t.step('requester.post("organizations")', async () => {
  const r = await admin.requester.post("organizations", { body: { name: "Beaker Org", path: "beaker-org" } });
  t.eq(r.status, 201, "status");
  t.eq(r.body.path, "beaker-org", "path");
  t.check(typeof r.body.id === "number", `no numeric id in ${JSON.stringify(r.body)}`);
  // KNOWN BUG B1 again (same cause as in Groups.create).
  t.eq(r.body.name, "Beaker Org", "name in the create answer");
  const shown = await admin.Groups.show("beaker-org");
  t.eq([shown.id, shown.name], [r.body.id, "Beaker Org"], "id and name read back as a group");
  await admin.Groups.remove(shown.id);
});

t.finish();
