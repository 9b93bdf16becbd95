// gitea-js (Gitea dialect) against forgebridge: giteaApi(PROXY_URL, {token}), which adds /api/v1
// itself and sends `Authorization: Bearer TOKEN`. Usage and environment: see lib.mjs. Expects
// the seed of tests/common/mod.rs.
//
// gitea-js returns the fetch Response with the parsed body in .data; a 204 gives data=null (and
// a JSON parse error in .error) without throwing, so 204s are checked on .status. Any status
// >= 400 throws the Response, its body in .error.

import { giteaApi } from "gitea-js";
import { harness, keys } from "./lib.mjs";

const t = harness("gitea-js");
const apiBase = `${t.url}/api/v1`;
const as = (who) => giteaApi(t.url, { token: t.tokens[who] });
const admin = as("admin");
const alice = as("alice");
const bob = as("bob");
const carol = as("carol");

const NO_GITLAB = ["gitlab"];

/** Walks a page/limit list by hand (gitea-js has no paging helper), checking the headers. */
async function walk(fetchPage, limit, what) {
  const items = [];
  let total = null;
  for (let page = 1; page <= 20; page += 1) {
    const r = await fetchPage({ page, limit });
    t.eq(r.status, 200, `${what} page ${page}: status`);
    const count = Number(r.headers.get("x-total-count"));
    t.check(Number.isInteger(count) && r.headers.get("x-total-count") !== null, `${what} page ${page}: no X-Total-Count`);
    total ??= count;
    items.push(...r.data);
    const link = r.headers.get("link") || "";
    const next = /<([^>]*)>;\s*rel="next"/.exec(link);
    for (const m of link.matchAll(/<([^>]*)>/g)) {
      t.check(m[1].startsWith(`${apiBase}/`), `${what}: a Link leaves the proxy: ${m[1]}`);
    }
    if (items.length >= total) {
      t.check(!next, `${what}: the last page (${page}) still has rel="next": ${link}`);
      return { items, total, pages: page };
    }
    t.check(next, `${what}: page ${page} of ${total} items has no rel="next": ${JSON.stringify(link)}`);
    t.eq(Number(new URL(next[1]).searchParams.get("page")), page + 1, `${what}: page of the rel="next" link`);
  }
  t.fail(`${what}: paging did not end after 20 pages`);
}

await t.step("orgs.orgGet", async () => {
  const r = await alice.orgs.orgGet("acme");
  t.eq(r.status, 200, "status");
  t.eq([r.data.username, r.data.full_name, r.data.description, r.data.visibility], ["acme", "Acme", "Rockets", "public"], "username, full_name, description, visibility");
  await t.rejects(404, () => alice.orgs.orgGet("no-such-org"), "orgGet of a missing org");
});

await t.step("orgs.orgGetAll (page/limit 1, walked by hand)", async () => {
  const { items, total, pages } = await walk((q) => admin.orgs.orgGetAll(q), 1, "GET /orgs");
  t.eq(items.map((o) => o.username), ["acme", "widgets", "hidden"], "all organizations");
  t.eq([total, pages], [3, 3], "X-Total-Count and pages");
});

await t.step("admin.adminGetAllOrgs", async () => {
  const r = await admin.admin.adminGetAllOrgs({ limit: 50 });
  t.eq(keys(r.data, "username"), ["acme", "hidden", "widgets"], "all organizations");
});

await t.step("user.orgListCurrentUserOrgs (as carol)", async () => {
  const r = await carol.user.orgListCurrentUserOrgs({});
  // KNOWN BUG B2 (see the report): forgebridge's GitLab dialect ignores min_access_level on
  // GET /groups, so through a GitLab upstream (the reference forge) carol's organizations
  // include acme, which she is not a member of.
  t.eq(keys(r.data, "username"), ["hidden", "widgets"], "carol's organizations");
});

await t.stepOr501("users.orgListUserOrgs", "org.list_for_user", NO_GITLAB, async () => {
  const r = await alice.users.orgListUserOrgs("alice", {});
  t.check(keys(r.data, "username").includes("acme"), `acme missing from ${JSON.stringify(keys(r.data, "username"))}`);
});

await t.step("orgs.orgCreate", async () => {
  const r = await admin.orgs.orgCreate({ username: "tea-org", full_name: "Tea Org", description: "Brewed by gitea-js" });
  t.eq(r.status, 201, "status");
  t.eq([r.data.username, r.data.full_name, r.data.description], ["tea-org", "Tea Org", "Brewed by gitea-js"], "username, full_name, description");
  const got = await admin.orgs.orgGet("tea-org");
  t.eq([got.data.full_name, got.data.description], ["Tea Org", "Brewed by gitea-js"], "full_name and description read back");
  await t.rejects(422, () => admin.orgs.orgCreate({ username: "tea-org" }), "orgCreate of an existing name");
});

await t.step("admin.adminCreateOrg (for alice)", async () => {
  const r = await admin.admin.adminCreateOrg("alice", { username: "tea-alice", full_name: "Tea Alice" });
  t.eq(r.status, 201, "status");
  t.eq(r.data.username, "tea-alice", "username");
  // KNOWN BUG B1 (see the report): on a GitHub upstream a create that needs no follow-up
  // update answers from GitHub's admin-create answer, which has no display name, so full_name
  // is empty although the upstream stored "Tea Alice".
  t.eq(r.data.full_name, "Tea Alice", "full_name in the create answer");
  const got = await admin.orgs.orgGet("tea-alice");
  t.eq(got.data.full_name, "Tea Alice", "full_name read back");
  const perms = await alice.users.orgGetUserPermissions("alice", "tea-alice");
  t.eq(perms.data.is_owner, true, "alice owns the organization created for her");
});

await t.step("orgs.orgEdit", async () => {
  const r = await admin.orgs.orgEdit("tea-org", { description: "Steeped", full_name: "Tea Org Ltd" });
  t.eq(r.status, 200, "status");
  t.eq([r.data.username, r.data.description, r.data.full_name], ["tea-org", "Steeped", "Tea Org Ltd"], "username, description, full_name");
  const got = await admin.orgs.orgGet("tea-org");
  t.eq([got.data.description, got.data.full_name], ["Steeped", "Tea Org Ltd"], "description and full_name read back");
});

// gitea-js 1.23 has no renameOrg; its generic request method reaches POST /orgs/{org}/rename.
await t.step('request("POST /orgs/{org}/rename")', async () => {
  const r = await admin.request({ path: "/orgs/tea-org/rename", method: "POST", body: { new_name: "tea-renamed" }, type: "application/json", secure: true });
  t.eq(r.status, 204, "status");
  const got = await admin.orgs.orgGet("tea-renamed");
  t.eq([got.data.username, got.data.description], ["tea-renamed", "Steeped"], "the renamed organization");
  await t.rejects(404, () => admin.orgs.orgGet("tea-org"), "orgGet of the old name");
});

await t.step("orgs.orgListMembers (page/limit 1, walked by hand)", async () => {
  const { items, total } = await walk((q) => alice.orgs.orgListMembers("acme", q), 1, "GET /orgs/acme/members");
  t.eq([keys(items), total], [["alice", "bob"], 2], "acme's members and X-Total-Count");
});

await t.step("orgs.orgIsMember", async () => {
  const r = await alice.orgs.orgIsMember("acme", "bob");
  t.eq(r.status, 204, "status for a member");
  await t.rejects(404, () => alice.orgs.orgIsMember("acme", "dave"), "orgIsMember of a non-member");
});

await t.step("users.orgGetUserPermissions", async () => {
  const owner = await alice.users.orgGetUserPermissions("alice", "acme");
  t.eq([owner.data.is_owner, owner.data.can_read], [true, true], "alice's is_owner, can_read");
  const member = await alice.users.orgGetUserPermissions("bob", "acme");
  t.eq([member.data.is_owner, member.data.can_read], [false, true], "bob's is_owner, can_read");
});

await t.stepOr501("orgs.orgListPublicMembers", "public_member.list", NO_GITLAB, async () => {
  const r = await alice.orgs.orgListPublicMembers("acme", {});
  t.eq(keys(r.data), ["alice"], "acme's public members");
});

await t.stepOr501("orgs.orgIsPublicMember", "public_member.check", NO_GITLAB, async () => {
  const r = await alice.orgs.orgIsPublicMember("acme", "alice");
  t.eq(r.status, 204, "status for a public member");
  await t.rejects(404, () => alice.orgs.orgIsPublicMember("acme", "bob"), "orgIsPublicMember of a concealed member");
});

await t.stepOr501("orgs.orgPublicizeMember (as bob)", "public_member.publicize", NO_GITLAB, async () => {
  const r = await bob.orgs.orgPublicizeMember("acme", "bob");
  t.eq(r.status, 204, "status");
  const list = await alice.orgs.orgListPublicMembers("acme", {});
  t.eq(keys(list.data), ["alice", "bob"], "public members after publicizing bob");
});

await t.stepOr501("orgs.orgConcealMember (as bob)", "public_member.conceal", NO_GITLAB, async () => {
  const r = await bob.orgs.orgConcealMember("acme", "bob");
  t.eq(r.status, 204, "status");
  await t.rejects(404, () => alice.orgs.orgIsPublicMember("acme", "bob"), "orgIsPublicMember after concealing");
});

await t.stepOr501("orgs.orgListActivityFeeds", "activity.list", NO_GITLAB, async () => {
  const r = await alice.orgs.orgListActivityFeeds("acme", {});
  // Gitea's feed holds repository activities only; the reference forge's organization events
  // (members added, publicized, …) have no op_type there and are left out. So: a list whose
  // items all carry a Gitea op_type, and a total that agrees with it.
  t.check(Array.isArray(r.data) && r.data.every((a) => typeof a.op_type === "string"), `not a list of activities: ${JSON.stringify(r.data).slice(0, 500)}`);
  t.eq(r.headers.get("x-total-count"), String(r.data.length), "X-Total-Count of the feed");
});

await t.step("orgs.orgDeleteMember", async () => {
  const r = await alice.orgs.orgDeleteMember("widgets", "carol");
  t.eq(r.status, 204, "status");
  await t.rejects(404, () => alice.orgs.orgIsMember("widgets", "carol"), "orgIsMember after removal");
});

await t.step("orgs.orgDelete", async () => {
  for (const org of ["tea-renamed", "tea-alice"]) {
    const r = await admin.orgs.orgDelete(org);
    t.eq(r.status, 204, `status of deleting ${org}`);
    await t.rejects(404, () => admin.orgs.orgGet(org), `orgGet of ${org} after delete`);
  }
});

t.finish();
