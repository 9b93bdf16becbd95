"""python-gitlab against forgebridge's GitLab dialect (url = PROXY; the client adds /api/v4).

Usage: python gitlab_python_gitlab.py --base http://127.0.0.1:PORT --upstream github|gitea|gitlab

python-gitlab follows only `Link rel="next"` when paging, and warns when a URL in an answer has
another base than the configured one; that warning is turned into an error here, so every paged
list also checks that the proxy's links point at the proxy.

Expects the seed of tests/common/mod.rs (see github_pygithub.py).
"""

import warnings
from importlib.metadata import version

import gitlab
import requests
from gitlab.exceptions import GitlabError

from fbcheck import Run, parse_args, unsupported_message

CLIENT = f"python-gitlab {version('python-gitlab')}"

# A link that leaves the proxy must fail the call that followed it, not merely warn.
warnings.filterwarnings("error", message=".*base URL in the server response differs.*")

# A tiny PNG header: enough for an avatar upload.
AVATAR = b"\x89PNG\r\n\x1a\n" + b"forgebridge-avatar"


def error_of(e):
    """(status, error message) of a python-gitlab HTTP error, None for anything else."""
    if isinstance(e, GitlabError) and e.response_code is not None:
        return e.response_code, e.error_message
    return None


def main():
    args = parse_args(__doc__)
    run = Run(CLIENT, args.upstream)
    api = args.base + "/api/v4"

    def client(token):
        return gitlab.Gitlab(args.base, private_token=token, timeout=30, retry_transient_errors=False)

    admin = client(args.admin_token)
    alice = client(args.alice_token)

    def expect_501(call, fn, op):
        """GitLab's 501: {"message": "501 Not Implemented: ..."}, raised by python-gitlab."""
        message = run.expect_error(call, fn, 501, error_of, unsupported_message(op, args.upstream))
        run.true(
            f"{call} 501 message in GitLab's shape",
            str(message).startswith("501 Not Implemented: "),
            message,
        )

    ids = {}

    # ------------------------------------------------------------------ who am I, user ids
    def users():
        run.eq("gl.api_url (the client adds /api/v4)", alice.api_url, api)
        run.call("gl.auth() as alice", alice.auth)
        run.eq("gl.user.username", alice.user.username, "alice")
        run.url_on_proxy("gl.user.web_url", alice.user.web_url, args.base + "/")
        for login in ("alice", "bob", "carol", "dave"):
            found = run.call(f"users.list(username={login!r})", lambda: alice.users.list(username=login))
            run.eq(f"users.list(username={login!r}) usernames", [u.username for u in found], [login])
            ids[login] = found[0].id
        call = f"users.get({ids['alice']})"
        if run.supported("user.get_by_id"):
            run.eq(call + ".username", run.call(call, lambda: alice.users.get(ids["alice"])).username, "alice")
        else:
            expect_501(call, lambda: alice.users.get(ids["alice"]), "user.get")

    run.section("auth / users", users)

    # ------------------------------------------------------------------ groups, paginated
    def lists():
        first = run.call("groups.list(per_page=1, page=1)", lambda: admin.groups.list(per_page=1, page=1))
        run.eq("len(groups.list(per_page=1, page=1))", len(first), 1)
        it = run.call("groups.list(iterator=True, per_page=1)", lambda: admin.groups.list(iterator=True, per_page=1))
        paths = run.call("list(groups.list(iterator=True, per_page=1))", lambda: [g.path for g in it])
        run.eq("groups.list(iterator=True, per_page=1) as admin", paths, ["acme", "widgets", "hidden"])
        run.eq("groups.list(iterator=True, per_page=1).total", it.total, 3)
        run.eq("groups.list(iterator=True, per_page=1).total_pages", it.total_pages, 3)
        paths = run.call(
            "groups.list(get_all=True, per_page=1) as alice",
            lambda: [g.path for g in alice.groups.list(get_all=True, per_page=1)],
        )
        run.eq("groups.list(get_all=True, per_page=1) as alice (no private groups)", paths, ["acme", "widgets"])

        found = run.call("groups.list(search='wid')", lambda: [g.path for g in alice.groups.list(search="wid", get_all=True)])
        run.eq("groups.list(search='wid')", found, ["widgets"])

    run.section("groups.list", lists)

    # ------------------------------------------------------------------ get
    def get():
        g = run.call("groups.get('acme')", lambda: alice.groups.get("acme"))
        run.eq("groups.get('acme').path", g.path, "acme")
        run.eq("groups.get('acme').full_path", g.full_path, "acme")
        run.eq("groups.get('acme').name", g.name, "Acme")
        run.eq("groups.get('acme').description", g.description, "Rockets")
        run.eq("groups.get('acme').visibility", g.visibility, "public")
        run.true("groups.get('acme').id is an int", isinstance(g.id, int), g.id)
        run.url_on_proxy("groups.get('acme').web_url", g.web_url, args.base + "/groups/acme")
        by_id = run.call(f"groups.get({g.id})", lambda: alice.groups.get(g.id))
        run.eq(f"groups.get({g.id}).path", by_id.path, "acme")
        run.expect_error("groups.get('nosuch')", lambda: alice.groups.get("nosuch"), 404, error_of)
        run.expect_error("groups.get('hidden') as alice (private)", lambda: alice.groups.get("hidden"), 404, error_of)

    run.section("groups.get", get)

    # ------------------------------------------------------------------ create, update (save), rename, delete
    def lifecycle():
        g = run.call(
            "groups.create({'name': 'GitLab Co', 'path': 'glco'})",
            lambda: admin.groups.create({"name": "GitLab Co", "path": "glco", "description": "made by python-gitlab"}),
        )
        run.eq("groups.create(...).path", g.path, "glco")
        run.eq("groups.create(...).name", g.name, "GitLab Co")
        run.eq("groups.create(...).description", g.description, "made by python-gitlab")
        run.true("groups.create(...).id is an int", isinstance(g.id, int), g.id)
        run.expect_error(
            "groups.create({'path': 'acme'}) (taken)",
            lambda: admin.groups.create({"name": "Acme", "path": "acme"}),
            400,
            error_of,
            "has already been taken",
        )

        g.description = "edited by python-gitlab"
        g.name = "GitLab Co Edited"
        run.call("group.save() (description, name)", g.save)
        again = admin.groups.get("glco")
        run.eq("groups.get('glco').description after save()", again.description, "edited by python-gitlab")
        run.eq("groups.get('glco').name after save()", again.name, "GitLab Co Edited")

        again.path = "glco2"
        run.call("group.save() (path: rename)", again.save)
        renamed = run.call("groups.get('glco2')", lambda: admin.groups.get("glco2"))
        run.eq("groups.get('glco2').name", renamed.name, "GitLab Co Edited")
        run.eq("groups.get('glco2').id (same group)", renamed.id, g.id)
        run.expect_error("groups.get('glco') after rename", lambda: admin.groups.get("glco"), 404, error_of)

        run.call("group.delete()", renamed.delete)
        run.expect_error("groups.get('glco2') after delete", lambda: admin.groups.get("glco2"), 404, error_of)
        # Members who are no owners may not change a group.
        acme = client(args.bob_token).groups.get("acme")
        acme.description = "nope"
        run.expect_error("group.save() as bob (member of acme)", acme.save, 403, error_of)

    run.section("groups.create / save / delete", lifecycle)

    # ------------------------------------------------------------------ members
    def members():
        acme = alice.groups.get("acme")
        listed = run.call("acme.members.list(get_all=True, per_page=1)", lambda: acme.members.list(get_all=True, per_page=1))
        run.eq("acme.members.list(get_all=True, per_page=1) usernames", sorted(m.username for m in listed), ["alice", "bob"])
        first = acme.members.list(per_page=1, page=1)
        run.eq("len(acme.members.list(per_page=1, page=1))", len(first), 1)
        if args.upstream == "gitlab":
            # Only a GitLab upstream's member list carries the level (README: GitHub and Gitea
            # member lists carry no role, so every member reads as 30 there).
            levels = {m.username: m.access_level for m in listed}
            run.eq("acme.members.list() access levels", levels, {"alice": 50, "bob": 30})

        m = run.call(f"acme.members.get({ids['alice']}) (alice)", lambda: acme.members.get(ids["alice"]))
        run.eq("acme.members.get(alice).username", m.username, "alice")
        run.eq("acme.members.get(alice).access_level", m.access_level, 50)
        m = run.call(f"acme.members.get({ids['bob']}) (bob)", lambda: acme.members.get(ids["bob"]))
        run.eq("acme.members.get(bob).access_level", m.access_level, 30)
        run.expect_error(
            f"acme.members.get({ids['dave']}) (dave, no member)", lambda: acme.members.get(ids["dave"]), 404, error_of
        )

        call = "acme.members.create({'user_id': dave, 'access_level': 30})"
        if run.supported("member.set_role"):
            created = run.call(call, lambda: acme.members.create({"user_id": ids["dave"], "access_level": 30}))
            run.eq(call + ".username", created.username, "dave")
            run.eq(call + ".access_level", created.access_level, 30)
            got = run.call("acme.members.get(dave) after create", lambda: acme.members.get(ids["dave"]))
            run.eq("acme.members.get(dave).access_level after create", got.access_level, 30)
            run.call("acme.members.delete(dave)", lambda: acme.members.delete(ids["dave"]))
            run.expect_error(
                "acme.members.get(dave) after delete", lambda: acme.members.get(ids["dave"]), 404, error_of
            )
        else:
            expect_501(
                call, lambda: acme.members.create({"user_id": ids["dave"], "access_level": 30}), "member.set_role"
            )

        # Changing a level: python-gitlab GETs the member, then PUTs the changed access_level.
        call = "acme.members.get(bob); member.access_level = 50; member.save()"
        bob_member = run.call("acme.members.get(bob)", lambda: acme.members.get(ids["bob"]))
        bob_member.access_level = 50
        if run.supported("member.set_role"):
            run.call(call, bob_member.save)
            run.eq("acme.members.get(bob).access_level after save()", acme.members.get(ids["bob"]).access_level, 50)
            bob_member.access_level = 30
            run.call("member.save() (bob back to 30)", bob_member.save)
            run.eq("acme.members.get(bob).access_level after save()", acme.members.get(ids["bob"]).access_level, 30)
        else:
            expect_501(call, bob_member.save, "member.set_role")

        widgets = alice.groups.get("widgets")
        run.call("widgets.members.delete(carol)", lambda: widgets.members.delete(ids["carol"]))
        left = [m.username for m in widgets.members.list(get_all=True)]
        run.eq("widgets.members.list() after delete", left, ["alice"])

    run.section("group members", members)

    # ------------------------------------------------------------------ POST /organizations (raw)
    def organizations():
        call = "gl.http_post('/organizations', post_data=..., files={'avatar': ...})"
        org = run.call(
            call,
            lambda: admin.http_post(
                "/organizations",
                post_data={"name": "Org API", "path": "orgapi", "description": "through the Organizations API"},
                files={"avatar": ("avatar.png", AVATAR, "image/png")},
            ),
        )
        run.eq(call + " path", org.get("path"), "orgapi")
        run.eq(call + " name", org.get("name"), "Org API")
        run.eq(call + " description", org.get("description"), "through the Organizations API")
        run.url_on_proxy(call + " web_url", org.get("web_url"), args.base + "/")
        run.url_on_proxy(call + " avatar_url", org.get("avatar_url"), args.base + "/")
        avatar = run.call("GET " + org["avatar_url"], lambda: requests.get(org["avatar_url"], timeout=30))
        run.eq("GET avatar_url status", avatar.status_code, 200)
        run.eq("GET avatar_url body (the uploaded file)", avatar.content, AVATAR)

        # Without a file: a JSON body.
        org2 = run.call(
            "gl.http_post('/organizations', post_data=...) (JSON)",
            lambda: admin.http_post("/organizations", post_data={"name": "Org API 2", "path": "orgapi2"}),
        )
        run.eq("gl.http_post('/organizations') (JSON) path", org2.get("path"), "orgapi2")

        # The organization is a top-level group for every other call.
        g = run.call("groups.get('orgapi')", lambda: admin.groups.get("orgapi"))
        run.eq("groups.get('orgapi').name", g.name, "Org API")
        run.call("group.delete() (orgapi)", g.delete)
        run.call("groups.delete('orgapi2')", lambda: admin.groups.delete("orgapi2"))
        run.expect_error("groups.get('orgapi2') after delete", lambda: admin.groups.get("orgapi2"), 404, error_of)

    run.section("POST /organizations (gl.http_post)", organizations)

    run.finish()


if __name__ == "__main__":
    main()
