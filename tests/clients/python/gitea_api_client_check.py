"""gitea-api-client against forgebridge's Gitea dialect (host = PROXY/api/v1).

Usage: python gitea_api_client_check.py --base http://127.0.0.1:PORT --upstream github|gitea|gitlab

gitea-api-client is generated from Gitea's own OpenAPI document (OpenAPI Generator, httpx,
pydantic v2): every answer is parsed into strictly typed models, so a field of the wrong type or
an enum value Gitea does not know fails the call. It was chosen over py-gitea because it covers
every organization call (rename, permissions, public members, activity feeds) and runs on
Python 3.11 (py-gitea 0.3 needs 3.13; 0.2 lacks public members and misreads a 204 membership).

Expects the seed of tests/common/mod.rs (see github_pygithub.py).
"""

import asyncio
import json
from importlib.metadata import version

import gitea_api_client as ga
from gitea_api_client.exceptions import ApiException

from fbcheck import Run, parse_args, unsupported_message

CLIENT = f"gitea-api-client {version('gitea-api-client')}"


def error_of(e):
    """(status, parsed body) of a gitea-api-client HTTP error, None for anything else."""
    if isinstance(e, ApiException):
        try:
            body = json.loads(e.body) if e.body else e.body
        except ValueError:
            body = e.body
        return e.status, body
    return None


class Session:
    """One token's API objects."""

    def __init__(self, api_base, token):
        cfg = ga.Configuration(
            host=api_base,
            api_key={"AuthorizationHeaderToken": token},
            api_key_prefix={"AuthorizationHeaderToken": "token"},
        )
        self.client = ga.ApiClient(cfg)
        self.org = ga.OrganizationApi(self.client)
        self.admin = ga.AdminApi(self.client)
        self.user = ga.UserApi(self.client)


async def walk(call, fetch, limit=1):
    """Every item of a page/limit list, one page at a time (the client has no paging helper).
    Returns (items, pages, X-Total-Count of the first page)."""
    items, page, total = [], 1, None
    while True:
        resp = await fetch(page=page, limit=limit)
        if total is None:
            total = resp.headers.get("x-total-count") if resp.headers else None
        if not resp.data:
            break
        items.extend(resp.data)
        if len(resp.data) < limit:
            break
        page += 1
        if page > 100:
            raise RuntimeError(f"{call}: pagination does not end")
    return items, page, total


async def main_async(args, run):
    api = args.base + "/api/v1"
    admin = Session(api, args.admin_token)
    alice = Session(api, args.alice_token)
    bob = Session(api, args.bob_token)
    sessions = [admin, alice, bob]

    def call(desc, awaitable):
        return run.acall(desc, awaitable)

    def expect_error(desc, awaitable, status, contains=None):
        return run.aexpect_error(desc, awaitable, status, error_of, contains)

    async def expect_501(desc, coro, op):
        body = await expect_error(desc, coro, 501, unsupported_message(op, args.upstream))
        run.true(
            f"{desc} 501 body has Gitea's error shape",
            isinstance(body, dict) and set(body) == {"message", "url"},
            body,
        )

    # ------------------------------------------------------------------ get an org
    async def get_org():
        org = await call("org_get('acme')", alice.org.org_get("acme"))
        run.eq("org_get('acme').name", org.name, "acme")
        run.eq("org_get('acme').username", org.username, "acme")
        run.eq("org_get('acme').full_name", org.full_name, "Acme")
        run.eq("org_get('acme').description", org.description, "Rockets")
        run.eq("org_get('acme').visibility", org.visibility, "public")
        run.true("org_get('acme').id is an int", isinstance(org.id, int), org.id)
        run.url_on_proxy("org_get('acme').avatar_url", org.avatar_url, args.base + "/")
        await expect_error("org_get('nosuch')", alice.org.org_get("nosuch"), 404)
        await expect_error("org_get('hidden') as alice (private, not a member)", alice.org.org_get("hidden"), 404)

    await run.asection("org_get", get_org)

    # ------------------------------------------------------------------ lists, page by page
    async def lists():
        items, pages, total = await call(
            "org_get_all(page=, limit=1)",
            walk("org_get_all", lambda **kw: admin.org.org_get_all_with_http_info(**kw)),
        )
        run.eq("org_get_all(limit=1) as site admin, all pages", [o.name for o in items], ["acme", "widgets", "hidden"])
        run.true("org_get_all(limit=1) took several pages", pages >= 3, pages)
        run.eq("org_get_all X-Total-Count", total, "3")

        items, pages, total = await call(
            "org_list_current_user_orgs(page=, limit=1)",
            walk("org_list_current_user_orgs", lambda **kw: alice.org.org_list_current_user_orgs_with_http_info(**kw)),
        )
        run.eq("org_list_current_user_orgs(limit=1) as alice", sorted(o.name for o in items), ["acme", "widgets"])
        run.true("org_list_current_user_orgs(limit=1) took several pages", pages >= 2, pages)

        desc = "org_list_user_orgs('alice') as bob"
        if run.supported("org.list_for_user"):
            orgs = await call(desc, bob.org.org_list_user_orgs("alice"))
            # Another user sees alice's public memberships only.
            run.eq(desc, [o.name for o in orgs], ["acme"])
        else:
            await expect_501(desc, bob.org.org_list_user_orgs("alice"), "org.list_for_user")

    await run.asection("org_get_all / org_list_current_user_orgs / org_list_user_orgs", lists)

    # ------------------------------------------------------------------ create, edit, rename, delete
    async def lifecycle():
        opt = ga.CreateOrgOption(
            username="giteaco", full_name="Gitea Co", description="made by gitea-api-client", visibility="public"
        )
        org = await call("org_create(username='giteaco')", admin.org.org_create(opt))
        run.eq("org_create(...).name", org.name, "giteaco")
        run.eq("org_create(...).full_name", org.full_name, "Gitea Co")
        run.eq("org_create(...).description", org.description, "made by gitea-api-client")
        await expect_error(
            "org_create(username='acme') (exists)",
            admin.org.org_create(ga.CreateOrgOption(username="acme")),
            422,
            "user already exists",
        )

        # The admin API creates an org for another user, who becomes its owner.
        org2 = await call(
            "admin_create_org('alice', username='giteaco2')",
            admin.admin.admin_create_org("alice", ga.CreateOrgOption(username="giteaco2", full_name="Second")),
        )
        run.eq("admin_create_org(...).name", org2.name, "giteaco2")
        perms = await call(
            "org_get_user_permissions('alice', 'giteaco2')",
            admin.org.org_get_user_permissions("alice", "giteaco2"),
        )
        run.eq("org_get_user_permissions('alice', 'giteaco2').is_owner", perms.is_owner, True)

        edited = await call(
            "org_edit('giteaco', description=, full_name=)",
            admin.org.org_edit("giteaco", ga.EditOrgOption(description="edited", full_name="Gitea Co Edited")),
        )
        run.eq("org_edit(...).description", edited.description, "edited")
        run.eq("org_edit(...).full_name", edited.full_name, "Gitea Co Edited")
        again = await call("org_get('giteaco') after edit", admin.org.org_get("giteaco"))
        run.eq("org_get('giteaco').description after edit", again.description, "edited")

        await call(
            "rename_org('giteaco', new_name='giteaco-renamed')",
            admin.org.rename_org("giteaco", ga.RenameOrgOption(new_name="giteaco-renamed")),
        )
        renamed = await call("org_get('giteaco-renamed')", admin.org.org_get("giteaco-renamed"))
        run.eq("org_get('giteaco-renamed').full_name", renamed.full_name, "Gitea Co Edited")
        await expect_error("org_get('giteaco') after rename", admin.org.org_get("giteaco"), 404)

        await call("org_delete('giteaco-renamed')", admin.org.org_delete("giteaco-renamed"))
        await expect_error("org_get('giteaco-renamed') after delete", admin.org.org_get("giteaco-renamed"), 404)
        await call("org_delete('giteaco2')", admin.org.org_delete("giteaco2"))
        # Only owners may delete.
        await expect_error("org_delete('acme') as bob (member)", bob.org.org_delete("acme"), 403)

    await run.asection("org_create / admin_create_org / org_edit / rename_org / org_delete", lifecycle)

    # ------------------------------------------------------------------ members
    async def members():
        items, pages, total = await call(
            "org_list_members('acme', page=, limit=1)",
            walk("org_list_members", lambda **kw: alice.org.org_list_members_with_http_info("acme", **kw)),
        )
        run.eq("org_list_members('acme', limit=1)", sorted(u.login for u in items), ["alice", "bob"])
        run.true("org_list_members('acme', limit=1) took several pages", pages >= 2, pages)
        run.eq("org_list_members X-Total-Count", total, "2")
        await call("org_is_member('acme', 'bob')", alice.org.org_is_member("acme", "bob"))
        run.ok("org_is_member('acme', 'bob') -> 204")
        await expect_error("org_is_member('acme', 'dave')", alice.org.org_is_member("acme", "dave"), 404)

        perms = await call("org_get_user_permissions('bob', 'acme')", alice.org.org_get_user_permissions("bob", "acme"))
        run.eq(
            "org_get_user_permissions('bob', 'acme')",
            (perms.is_owner, perms.is_admin, perms.can_read),
            (False, False, True),
        )
        perms = await call(
            "org_get_user_permissions('alice', 'acme')", alice.org.org_get_user_permissions("alice", "acme")
        )
        run.eq("org_get_user_permissions('alice', 'acme').is_owner", perms.is_owner, True)

        await call("org_delete_member('widgets', 'carol')", alice.org.org_delete_member("widgets", "carol"))
        await expect_error(
            "org_is_member('widgets', 'carol') after delete", alice.org.org_is_member("widgets", "carol"), 404
        )
        left = await call("org_list_members('widgets')", alice.org.org_list_members("widgets"))
        run.eq("org_list_members('widgets') after delete", [u.login for u in left], ["alice"])

    await run.asection("org_list_members / org_is_member / org_get_user_permissions / org_delete_member", members)

    # ------------------------------------------------------------------ public members
    async def public_members():
        if not run.supported("public_member.list"):
            await expect_501("org_list_public_members('acme')", alice.org.org_list_public_members("acme"), "public_member.list")
            await expect_501("org_is_public_member('acme', 'alice')", alice.org.org_is_public_member("acme", "alice"), "public_member.check")
            await expect_501("org_publicize_member('acme', 'bob') as bob", bob.org.org_publicize_member("acme", "bob"), "public_member.publicize")
            await expect_501("org_conceal_member('acme', 'bob') as bob", bob.org.org_conceal_member("acme", "bob"), "public_member.conceal")
            return
        public = await call("org_list_public_members('acme')", alice.org.org_list_public_members("acme"))
        run.eq("org_list_public_members('acme')", [u.login for u in public], ["alice"])
        await call("org_is_public_member('acme', 'alice')", alice.org.org_is_public_member("acme", "alice"))
        run.ok("org_is_public_member('acme', 'alice') -> 204")
        await expect_error("org_is_public_member('acme', 'bob')", alice.org.org_is_public_member("acme", "bob"), 404)
        await call("org_publicize_member('acme', 'bob') as bob", bob.org.org_publicize_member("acme", "bob"))
        public = await call("org_list_public_members('acme') after publicize", alice.org.org_list_public_members("acme"))
        run.eq("org_list_public_members('acme') after publicize", sorted(u.login for u in public), ["alice", "bob"])
        await call("org_conceal_member('acme', 'bob') as bob", bob.org.org_conceal_member("acme", "bob"))
        await expect_error(
            "org_is_public_member('acme', 'bob') after conceal", alice.org.org_is_public_member("acme", "bob"), 404
        )

    await run.asection("public members", public_members)

    # ------------------------------------------------------------------ activity
    async def activity():
        desc = "org_list_activity_feeds('widgets')"
        if not run.supported("activity.list"):
            await expect_501(desc, alice.org.org_list_activity_feeds("widgets"), "activity.list")
            return
        # Gitea's feed holds repository activities only: organization events (the members
        # section removed carol from widgets) have no op_type in Gitea and are left out, so the
        # feed parses into Activity models and its total agrees with it.
        raw = await call(desc + " (raw)", alice.org.org_list_activity_feeds_without_preload_content("widgets"))
        run.eq(desc + " (raw) status", raw.status_code, 200)
        entries = raw.json()
        run.eq(desc + " (raw) X-Total-Count", raw.headers.get("x-total-count"), str(len(entries)))
        feed = await call(desc, alice.org.org_list_activity_feeds("widgets"))
        run.true(desc + " parses into Activity models", isinstance(feed, list), feed)

    await run.asection("org_list_activity_feeds", activity)

    for s in sessions:
        await s.client.close()


def main():
    args = parse_args(__doc__)
    run = Run(CLIENT, args.upstream)
    asyncio.run(main_async(args, run))
    run.finish()


if __name__ == "__main__":
    main()
